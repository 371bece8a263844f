package htpasswd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Hashes made by the tools users have: openssl passwd -apr1 (the same
// algorithm as htpasswd's default), PHP's password_hash ($2y$, as
// htpasswd -B writes), openssl's SHA-1 for {SHA}.
func TestAPR1MatchesOpenSSL(t *testing.T) {
	for _, tc := range []struct{ password, salt, want string }{
		{"secret", "abcdefgh", "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/"},
		{"pässwörd", "x.Y/1", "$apr1$x.Y/1$c7cOCPW9iRAsWU9Oy2VR00"},
		{"", "abcdefgh", "$apr1$abcdefgh$L.PT565ESX4Tp2bqNs7Ie."},
		{"a-password-longer-than-sixteen-bytes", "q", "$apr1$q$eZtA5rhfzrsr/nIG7Aw6p1"},
	} {
		if got := APR1(tc.password, tc.salt); got != tc.want {
			t.Errorf("APR1(%q, %q) = %q, want %q", tc.password, tc.salt, got, tc.want)
		}
	}
}

func TestVerify(t *testing.T) {
	gen, _ := bcrypt.GenerateFromPassword([]byte("go pass"), bcrypt.MinCost)
	users, err := Parse([]byte(strings.Join([]string{
		"# staging users",
		"ana:$2y$04$edQJaFhhHO19wSvun7o66.LHRTIGCBE1rS.TZpWzVMTirDhYKk9Wa",
		"",
		"bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/",
		"cy:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
		"dee:" + string(gen) + "\r",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, password string
		ok             bool
	}{
		{"ana", "s3cret pass", true},
		{"ana", "s3cret pass ", false},
		{"bo", "secret", true},
		{"bo", "Secret", false},
		{"cy", "secret", true},
		{"cy", "", false},
		{"dee", "go pass", true},
		{"nobody", "secret", false},
		{"", "", false},
	} {
		if got := users.Verify(tc.user, tc.password); got != tc.ok {
			t.Errorf("Verify(%q, %q) = %v, want %v", tc.user, tc.password, got, tc.ok)
		}
	}
}

// A file that would lock someone out, or that the gateway cannot check,
// is refused with its line and never with the hash.
func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"", "no user"},
		{"# only a comment\n", "no user"},
		{"ana", "line 1: not user:hash"},
		{":$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/", "line 1: not user:hash"},
		{"ana:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\nana:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "line 2: user \"ana\" is listed twice"},
		{"ana:$6$rounds=5000$saltsalt$cG1sLi5KbTzhI1WmNHyNMm4", "$6$ crypt hashes are not supported"},
		{"ana:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "$1$ crypt hashes are not supported"},
		{"ana:rl0c4JkM2sQ4E", "htpasswd -B"},
		{"ana:plaintext-password", "htpasswd -B"},
		{"ana:$apr1$abcdefgh$short", "malformed $apr1$"},
		{"ana:{SHA}not-base64!", "malformed {SHA}"},
		{"ana:$2y$04$tooshort", "malformed bcrypt"},
	} {
		_, err := Parse([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.file, err, tc.want)
		}
		if err != nil && strings.Contains(tc.file, "$") && strings.Contains(err.Error(), tc.file[strings.IndexByte(tc.file, ':')+1:]) {
			t.Errorf("%q: the error shows the hash: %v", tc.file, err)
		}
	}
}

// A File follows the file on disk: a user added, or a password changed,
// counts within a second and without a restart, remembered credentials
// included; a broken edit keeps the last good contents.
func TestFileFollowsChanges(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	write := func(s string) {
		tmp := p + ".tmp"
		os.WriteFile(tmp, []byte(s), 0o600)
		os.Rename(tmp, p) // as htpasswd and editors replace it
	}
	write("bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n")
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("bo", "secret") || !f.Verify("bo", "secret") {
		t.Fatal("bo refused")
	}
	write("cy:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")
	f.checked = time.Time{} // as if a second had passed
	if f.Verify("bo", "secret") {
		t.Error("bo, removed from the file, still let in (remembered credentials)")
	}
	if !f.Verify("cy", "secret") {
		t.Error("cy, added to the file, refused")
	}
	write("cy:garbage\n")
	f.checked = time.Time{}
	if !f.Verify("cy", "secret") || f.Err() == nil || strings.Contains(f.Err().Error(), "garbage") {
		t.Errorf("a broken edit: cy refused or no error (or the hash shown): %v", f.Err())
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file opened")
	}
}

// An edit in place that keeps the size and puts the mtime back, as
// `cp -p` over the file does, is still a new version: the ctime moved.
func TestFileFollowsAnEditThatRestoresTheMtime(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	bo := "bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n"
	if err := os.WriteFile(p, []byte(bo), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("bo", "secret") {
		t.Fatal("bo refused")
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // past the ctime clock's tick
	bx := strings.Replace(bo, "bo:", "bx:", 1)
	if err := os.WriteFile(p, []byte(bx), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	f.checked = time.Time{} // as if a second had passed
	if f.Verify("bo", "secret") {
		t.Error("bo, replaced in place with its mtime restored, still let in")
	}
	if !f.Verify("bx", "secret") {
		t.Error("bx, written in place with the old mtime, refused")
	}
}

// A 401 takes as long for a name the file lacks as for one it has: the
// unknown user's password is checked against a real entry's hash. The
// defect this guards against, an early return for a name not in the file,
// makes that check thousands of times faster than a bcrypt one, so the
// bound is one-sided and wide: load on the machine can slow either timing
// (the fastest of five is kept) but never make the unknown user's cheap.
func TestUnknownUserCostsTheSame(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), 5) // htpasswd -B's default cost
	users, err := Parse([]byte("ana:" + string(hash) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	fastest := func(user string) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			users.Verify(user, "wrong")
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := fastest("ana"), fastest("nobody")
	if unknown < known/10 {
		t.Errorf("wrong password: known user %v, unknown user only %v", known, unknown)
	}
}

// Remembered credentials hold the hash they were checked against: a check
// that ends after the file changed (the user removed, the password
// changed) cannot let the old password in afterwards; and credentials of
// one user never stand for another's (no ambiguity between fields).
func TestRememberedCredentialsFollowTheHash(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	const bo = "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/" // "secret"
	os.WriteFile(p, []byte("ana:"+bo+"\nbo:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"), 0o600)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p+".tmp", []byte("bo:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"), 0o600)
	os.Rename(p+".tmp", p)
	f.checked = time.Time{}
	f.Verify("bo", "secret") // the reload
	// What an in-flight check of ana's old password stores once it ends.
	f.good[cacheKey("ana", bo, "secret")] = time.Now()
	if f.Verify("ana", "secret") {
		t.Error("ana, removed from the file, let in by a check that ended after the reload")
	}
	if cacheKey("a\x00b", "h", "c") == cacheKey("a", "h", "b\x00c") {
		t.Error("cache keys of different users collide")
	}
	// bcrypt reads 72 bytes: one user's passwords past that are one key.
	long := strings.Repeat("x", 72)
	if cacheKey("u", "$2y$", long+"a") != cacheKey("u", "$2y$", long+"b") {
		t.Error("a user's long bcrypt passwords fill the cache with keys")
	}
}

// Emptying the file, leaving only comments or deleting it locks everyone
// out, as with nginx; only a malformed edit keeps the last good contents.
func TestEmptiedFileLetsNoOneIn(t *testing.T) {
	p := filepath.Join(t.TempDir(), "htpasswd")
	for _, revoke := range []func(){
		func() { os.WriteFile(p, nil, 0o600) },
		func() { os.WriteFile(p, []byte("# bo removed\n"), 0o600) },
		func() { os.Remove(p) },
	} {
		os.WriteFile(p, []byte("bo:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n"), 0o600)
		f, err := Open(p)
		if err != nil || !f.Verify("bo", "secret") {
			t.Fatal("bo refused", err)
		}
		revoke()
		f.checked = time.Time{}
		if f.Verify("bo", "secret") || f.NewErr() == nil || f.NewErr() != nil {
			t.Errorf("bo still let in, or the problem not reported once (%v)", f.Err())
		}
	}
}

// Files as Apache reads them: a byte order mark, trailing blanks, a
// ":comment" field after the hash.
func TestParseLikeApache(t *testing.T) {
	const good = "$2y$04$edQJaFhhHO19wSvun7o66.LHRTIGCBE1rS.TZpWzVMTirDhYKk9Wa" // "s3cret pass"
	for _, file := range []string{
		"\ufeffana:" + good + "\n",
		"ana:" + good + " \t\n",
		"ana:" + good + ":Ana Smith\n",
	} {
		users, err := Parse([]byte(file))
		if err != nil || !users.Verify("ana", "s3cret pass") {
			t.Errorf("%q: %v, or ana refused", file, err)
		}
	}
	for _, bad := range []string{good[:len(good)-1], good[:10] + "!" + good[11:], good + "x"} {
		if _, err := Parse([]byte("ana:" + bad)); err == nil || !strings.Contains(err.Error(), "malformed bcrypt") {
			t.Errorf("%q accepted (its user could never get in): %v", bad, err)
		}
	}
	if _, err := Parse([]byte("bo:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n" + strings.Repeat("x", 70000) + "\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a long line: %v, want its number", err)
	}
	if _, err := Parse([]byte(good + ":x\n")); err == nil || strings.Contains(err.Error(), "edQJ") {
		t.Errorf("a hash in the user field is echoed: %v", err)
	}
}

// The same holds in a file whose entries use different hashes (older
// $apr1$ entries next to users added with htpasswd -B, or bcrypt entries
// of different costs): whichever entry comes first, neither a name the
// file lacks nor a name with a cheaper or dearer hash stands out by the
// time its wrong password takes. Every check costs one check of each
// kind of hash the file holds. One-sided and wide bounds, as above.
func TestUnknownUserCostsTheSameInAMixedFile(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("secret"), 7)
	const apr1 = "$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/" // "secret"
	for name, file := range map[string]string{
		"apr1 first":   "ana:" + apr1 + "\nbo:" + string(bc) + "\n",
		"bcrypt first": "bo:" + string(bc) + "\nana:" + apr1 + "\n",
	} {
		users, err := Parse([]byte(file))
		if err != nil {
			t.Fatal(err)
		}
		fastest := func(user string) time.Duration {
			best := time.Hour
			for range 5 {
				start := time.Now()
				users.Verify(user, "wrong")
				best = min(best, time.Since(start))
			}
			return best
		}
		bcryptUser := fastest("bo")
		for _, user := range []string{"nobody", "ana"} {
			if d := fastest(user); d < bcryptUser/10 {
				t.Errorf("%s: wrong password: bcrypt user %v, %s only %v", name, bcryptUser, user, d)
			}
		}
		if !users.Verify("ana", "secret") || !users.Verify("bo", "secret") || users.Verify("nobody", "secret") {
			t.Errorf("%s: right passwords refused or an unknown user let in", name)
		}
	}
}

// A password longer than MaxPassword is refused unhashed, whoever the
// user: $apr1$ runs MD5 over the password three thousand times, and the
// checks against the decoys run for every name, so a client sending a
// password of 700 KB (SESSIONGATE_MAX_HEADER_BYTES is 1 MB) spent four
// seconds of CPU per request. htpasswd accepts 255 bytes at most.
func TestVerifyRefusesOverlongPassword(t *testing.T) {
	long := strings.Repeat("x", MaxPassword+1)
	fits := strings.Repeat("y", MaxPassword)
	users, err := Parse([]byte("bo:" + APR1(long, "abcdefgh") + "\ncy:" + APR1(fits, "abcdefgh") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if users.Verify("bo", long) {
		t.Errorf("a password of %d bytes checked", len(long))
	}
	if !users.Verify("cy", fits) {
		t.Errorf("a password of %d bytes refused", len(fits))
	}
}

// The limit holds for remembered credentials too: bcrypt reads 72 bytes,
// so a right 72-byte start remembered would otherwise let in a password
// of any length that begins with it.
func TestFileRefusesOverlongPasswordRemembered(t *testing.T) {
	pw := strings.Repeat("p", 72)
	hash, _ := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	p := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(p, []byte("ana:"+string(hash)+"\n"), 0o600)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("ana", pw) || !f.Verify("ana", pw+"tail") {
		t.Fatal("the right password refused")
	}
	if f.Verify("ana", pw+strings.Repeat("x", MaxPassword)) {
		t.Errorf("a password of %d bytes let in from memory", len(pw)+MaxPassword)
	}
}
