package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoadOneVariable sets one variable, any of them, to any value on top
// of a valid environment: Load must answer with a configuration or an
// *Error naming that variable (or the ones it conflicts with), never panic,
// and never echo a secret's value.
func FuzzLoadOneVariable(f *testing.F) {
	vars := Variables()
	for i, v := range vars {
		f.Add(uint16(i), v.Default)
		f.Add(uint16(i), "")
		f.Add(uint16(i), "x\x00y")
	}
	f.Add(uint16(0), "[::1]:http")
	f.Add(uint16(0), "unix:/tmp/x")
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, idx uint16, value string) {
		v := vars[int(idx)%len(vars)]
		env := []string{
			"SESSIONGATE_PHP_FPM=127.0.0.1:9000",
			"SESSIONGATE_DOCUMENT_ROOT=" + root,
			"SESSIONGATE_SESSION_KEYS=" + testKey,
			v.Name + "=" + value,
		}
		_, err := Load(env)
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s=%q: error of type %T: %v", v.Name, value, err, err)
		}
		if len(ce.Problems) == 0 {
			t.Fatalf("%s=%q: an error naming no variable: %v", v.Name, value, err)
		}
		for _, p := range ce.Problems {
			if p.Var == "" || p.Msg == "" {
				t.Fatalf("%s=%q: problem without a variable or a message: %+v", v.Name, value, p)
			}
		}
		if v.Secret && len(value) >= 8 && strings.Contains(err.Error(), value) {
			t.Fatalf("%s: the secret value is in the error: %v", v.Name, err)
		}
	})
}
