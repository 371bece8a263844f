package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// durationProblem loads base plus name=value and returns the message for
// name, "" when the value is accepted.
func durationProblem(t *testing.T, name, value string) string {
	t.Helper()
	env := append(base(t), name+"="+value)
	if name == "SESSIONGATE_DJANGO_TIMEOUT" || name == "SESSIONGATE_DJANGO_DIAL_TIMEOUT" {
		env = append(env, "SESSIONGATE_DJANGO_URL=http://127.0.0.1:8000", "SESSIONGATE_DJANGO_PATHS=/admin/")
	}
	_, err := Load(env)
	var ce *Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, p := range ce.Problems {
		if p.Var == name {
			return p.Msg
		}
	}
	return ""
}

// A duration variable's messages name the values it accepts, once, so one
// correction is enough. "not a duration: ... or 0" for a variable that
// refuses 0 sent the operator to a second error ("must be > 0"), and a
// negative value got "must not be negative", after which 0 was refused.
func TestDurationErrorsNameTheAcceptedRange(t *testing.T) {
	var c Config
	for _, v := range describe(&c) {
		if v.value.Type() != reflect.TypeFor[time.Duration]() {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			word, negative, zero := durationProblem(t, v.Name, "ten"), durationProblem(t, v.Name, "-1s"), durationProblem(t, v.Name, "0")
			if word == "" || negative == "" {
				t.Fatalf("ten: %q, -1s: %q: want errors", word, negative)
			}
			if zero == "" {
				if !strings.Contains(word, "or 0") {
					t.Errorf("0 is accepted, and the error for ten does not say so: %q", word)
				}
				return
			}
			if strings.Contains(word, "or 0") {
				t.Errorf("the error for ten suggests 0, which is refused with %q: %q", zero, word)
			}
			if negative != zero {
				t.Errorf("-1s: %q, 0: %q: the same range, said differently", negative, zero)
			}
			rng, _, _ := strings.Cut(strings.TrimPrefix(zero, "must be "), ":")
			if !strings.Contains(word, rng) {
				t.Errorf("the error for ten, %q, does not name the accepted range %q", word, rng)
			}
			if strings.Count(word, rng) != 1 || strings.Count(zero, rng) != 1 {
				t.Errorf("the range said more than once: %q, %q", word, zero)
			}
		})
	}
}
