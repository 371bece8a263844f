package phpserial

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// benchSession builds a realistic php_serialize session of about size
// bytes: a logged-in user, roles, a CSRF token, preferences, a cart of
// items with floats, flash messages, one PHP object (a tag) and, to reach
// the size, a list of recently viewed records.
func benchSession(size int) []byte {
	var b strings.Builder
	var entries int
	var body strings.Builder
	add := func(key string, val string) {
		entries++
		fmt.Fprintf(&body, "s:%d:\"%s\";%s", len(key), key, val)
	}
	str := func(v string) string { return fmt.Sprintf("s:%d:\"%s\";", len(v), v) }
	add("user_id", "i:48213;")
	add("username", str("jeanne.dupont"))
	add("email", str("jeanne.dupont@example.org"))
	add("roles", `a:3:{i:0;s:5:"admin";i:1;s:6:"editor";i:2;s:6:"viewer";}`)
	add("csrf_token", str("3f1c9a7be2d84f60a1b5c7d9e0f21436a8b9c0d1e2f30415"))
	add("login_time", "i:1700000000;")
	add("prefs", `a:4:{s:4:"lang";s:5:"fr_FR";s:2:"tz";s:12:"Europe/Paris";s:4:"dark";b:1;s:8:"per_page";i:50;}`)
	add("flash", `a:2:{i:0;a:2:{s:4:"type";s:7:"success";s:3:"msg";`+str("Profil mis à jour avec succès")+`}i:1;a:2:{s:4:"type";s:4:"info";s:3:"msg";`+str("Bienvenue à bord")+`}}`)
	add("auth", `O:8:"AuthInfo":3:{s:6:"method";s:8:"password";`+str("\x00*\x00mfa")+`b:1;`+str("\x00AuthInfo\x00ip")+`s:11:"203.0.113.7";}`)
	var cart strings.Builder
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&cart, "i:%d;a:4:{s:3:\"sku\";s:6:\"SKU-%02d\";s:3:\"qty\";i:%d;s:5:\"price\";d:%s;s:4:\"name\";s:%d:\"%s\";}",
			i, i, i%3+1, strconv.FormatFloat(9.99+float64(i)*3.25, 'f', -1, 64), len("Article numéro "+strconv.Itoa(i)), "Article numéro "+strconv.Itoa(i))
	}
	add("cart", fmt.Sprintf("a:8:{%s}", cart.String()))
	// Pad with "recently viewed" records until the size is reached.
	var recent strings.Builder
	n := 0
	for body.Len()+recent.Len() < size-64 {
		fmt.Fprintf(&recent, "i:%d;a:3:{s:2:\"id\";i:%d;s:5:\"title\";s:%d:\"%s\";s:5:\"score\";d:%s;}",
			n, 100000+n*7, len("Page vue n°"+strconv.Itoa(n)), "Page vue n°"+strconv.Itoa(n), strconv.FormatFloat(float64(n%97)/7, 'g', -1, 64))
		n++
	}
	add("recent", fmt.Sprintf("a:%d:{%s}", n, recent.String()))
	fmt.Fprintf(&b, "a:%d:{%s}", entries, body.String())
	return []byte(b.String())
}

func TestBenchSessionsAreValid(t *testing.T) {
	for _, size := range []int{2 << 10, 1 << 20} {
		in := benchSession(size)
		j, err := DecodeSession(in, Limits{})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		back, err := EncodeSession(j, Limits{})
		if err != nil || string(back) != string(in) {
			t.Fatalf("size %d: round trip: %v", size, err)
		}
	}
}

func benchSizes() []struct {
	name string
	size int
} {
	return []struct {
		name string
		size int
	}{{"2KiB", 2 << 10}, {"1MiB", 1 << 20}}
}

func BenchmarkDecodeSession(b *testing.B) {
	for _, s := range benchSizes() {
		in := benchSession(s.size)
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeSession(in, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeSession(b *testing.B) {
	for _, s := range benchSizes() {
		j, err := DecodeSession(benchSession(s.size), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(j)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeSession(j, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
