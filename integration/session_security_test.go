package integration

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// TestDjangoCannotPlantPHPObjects: a PHP object (O:), Serializable (C:) or
// enum case (E:) reaches PHP as a {"__php__": ...} tag of the shared JSON,
// and PHP builds it, running its class's hooks, whenever it reads the
// session. In Django, storing a client's JSON (or request.GET.dict()) in
// the session is harmless data; through the gateway such a dict spelled
// {"__php__": "O:..."} would be a PHP object injection. Only a tag the
// session already held (PHP's own, written back unchanged) may come back
// from Django; the write is refused otherwise and PHP builds nothing.
func TestDjangoCannotPlantPHPObjects(t *testing.T) {
	t.Parallel()
	s, _ := startDjangoAPIStack(t)
	gw := s.gws[0]
	obj := `O:7:"Planted":0:{}`
	for name, value := range map[string]any{
		"object":               map[string]string{"__php__": obj},
		"base64 object":        map[string]string{"__php__b64": base64.StdEncoding.EncodeToString([]byte(obj))},
		"object in a list":     []any{1, map[string]string{"__php__": obj}},
		"object in an array":   map[string]string{"__php__": `a:1:{i:0;` + obj + `}`},
		"Serializable":         map[string]string{"__php__": `C:7:"Planted":0:{}`},
		"unknown class object": map[string]string{"__php__": `O:9:"Unplanted":0:{}`},
	} {
		t.Run(name, func(t *testing.T) {
			ck := s.newSession(t)
			j := jar{"sessionid": ck}
			_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
			body, _ := json.Marshal(map[string]any{"prefs": value})
			res, _ := call(t, gw, j, "POST", "/accounts/api/set/", string(body), "Content-Type", "application/json", "X-CSRFToken", tok)
			if res.StatusCode != 500 {
				t.Errorf("Django's write of %s: %d, want 500 (refused)", body, res.StatusCode)
			}
			if _, got, _ := gw.get(t, "/planted.php", j["sessionid"]); got != "none" {
				t.Errorf("PHP built objects Django planted: %s", got)
			}
		})
	}
	t.Run("PHP's own object written back", func(t *testing.T) {
		ck := s.newSession(t)
		if res, body, _ := gw.get(t, "/planted.php?set=1", ck); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("PHP stores an object: %d %s", res.StatusCode, body)
		}
		j := jar{"sessionid": ck}
		_, tok := call(t, gw, j, "GET", "/accounts/api/token/", "")
		res, _ := call(t, gw, j, "POST", "/accounts/api/set/", `{"django":1}`, "Content-Type", "application/json", "X-CSRFToken", tok)
		if res.StatusCode != 200 {
			t.Fatalf("Django's write next to PHP's object: %d", res.StatusCode)
		}
		if _, got, _ := gw.get(t, "/planted.php", j["sessionid"]); got != "Planted (hook ran)" {
			t.Errorf("PHP's own object after Django's write: %s", got)
		}
	})
}
