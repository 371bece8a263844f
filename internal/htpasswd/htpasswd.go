// Package htpasswd checks user names and passwords against the files
// Apache's htpasswd and `openssl passwd` write, the files nginx's
// auth_basic_user_file reads: one "user:hash" per line. The hashes
// accepted are those tools' current and default ones: bcrypt ($2y$, $2a$,
// $2b$: htpasswd -B), Apache's MD5 ($apr1$: htpasswd's default, openssl
// passwd -apr1) and, for old files, {SHA}. Others (crypt's DES, $1$, $5$,
// $6$, plain text) are refused when the file is read, with the line, so a
// user the file names can never be locked out silently.
package htpasswd

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Users is a parsed file: user name to hash.
type Users map[string]string

// Parse reads a file's contents. Errors name the line, never its hash.
func Parse(b []byte) (Users, error) {
	users := Users{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: not user:hash", n)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q is listed twice", n, user)
		}
		if err := checkHash(hash); err != nil {
			return nil, fmt.Errorf("line %d (user %q): %w", n, user, err)
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, errors.New("no user: every request would be refused")
	}
	return users, nil
}

func checkHash(h string) error {
	switch {
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"):
		if _, err := bcrypt.Cost([]byte(bcryptHash(h))); err != nil {
			return fmt.Errorf("malformed bcrypt hash: %w", err)
		}
		return nil
	case strings.HasPrefix(h, "$apr1$"):
		salt, sum, ok := strings.Cut(h[len("$apr1$"):], "$")
		if !ok || salt == "" || len(salt) > 8 || len(sum) != 22 {
			return errors.New("malformed $apr1$ hash")
		}
		return nil
	case strings.HasPrefix(h, "{SHA}"):
		if b, err := base64.StdEncoding.DecodeString(h[len("{SHA}"):]); err != nil || len(b) != sha1.Size {
			return errors.New("malformed {SHA} hash")
		}
		return nil
	case strings.HasPrefix(h, "$1$"), strings.HasPrefix(h, "$5$"), strings.HasPrefix(h, "$6$"):
		return fmt.Errorf("%s crypt hashes are not supported: make the entry with htpasswd -B (bcrypt)", h[:3])
	}
	return errors.New("not a bcrypt ($2y$), $apr1$ or {SHA} hash (crypt's DES and plain text are not supported): make the entry with htpasswd -B")
}

// bcryptHash spells $2y$ (PHP's and htpasswd's name for the same
// algorithm) as $2b$, which Go's bcrypt reads.
func bcryptHash(h string) string {
	if strings.HasPrefix(h, "$2y$") {
		return "$2b$" + h[4:]
	}
	return h
}

// Verify reports whether password is user's. An unknown user costs the
// same bcrypt work as a known one, so that timing does not tell them
// apart.
func (u Users) Verify(user, password string) bool {
	hash, ok := u[user]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	switch {
	case strings.HasPrefix(hash, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(bcryptHash(hash)), []byte(password)) == nil
	case strings.HasPrefix(hash, "$apr1$"):
		salt, _, _ := strings.Cut(hash[len("$apr1$"):], "$")
		return subtle.ConstantTimeCompare([]byte(APR1(password, salt)), []byte(hash)) == 1
	case strings.HasPrefix(hash, "{SHA}"):
		sum := sha1.Sum([]byte(password))
		return subtle.ConstantTimeCompare([]byte("{SHA}"+base64.StdEncoding.EncodeToString(sum[:])), []byte(hash)) == 1
	}
	return false
}

// dummyHash is a bcrypt hash of cost 10 that no password matches in
// practice.
var dummyHash = []byte("$2b$10$" + strings.Repeat("A", 53))

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// APR1 is Apache's MD5-based password hash, "$apr1$salt$sum": the
// FreeBSD MD5 crypt algorithm with Apache's magic string.
func APR1(password, salt string) string {
	const magic = "$apr1$"
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw := []byte(password)
	alt := md5.Sum([]byte(password + salt + password))
	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic))
	ctx.Write([]byte(salt))
	for i := len(pw); i > 0; i -= 16 {
		ctx.Write(alt[:min(16, i)])
	}
	for i := len(pw); i > 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final := ctx.Sum(nil)
	for i := 0; i < 1000; i++ {
		c := md5.New()
		if i&1 != 0 {
			c.Write(pw)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write([]byte(salt))
		}
		if i%7 != 0 {
			c.Write(pw)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(pw)
		}
		final = c.Sum(nil)
	}
	var b strings.Builder
	b.WriteString(magic + salt + "$")
	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			b.WriteByte(itoa64[v&0x3f])
			v >>= 6
		}
	}
	for _, g := range [][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		to64(uint32(final[g[0]])<<16|uint32(final[g[1]])<<8|uint32(final[g[2]]), 4)
	}
	to64(uint32(final[11]), 2)
	return b.String()
}

// File is a password file kept current: it is read again when it changes
// on disk (checked at most once a second), so that adding a user needs no
// restart. Verified credentials are remembered for a while, since bcrypt
// costs tens of milliseconds of CPU by design and a browser sends them
// with every request.
type File struct {
	path string

	mu      sync.Mutex
	users   Users
	stamp   fileStamp
	checked time.Time
	loadErr error
	good    map[[32]byte]time.Time
}

type fileStamp struct {
	size int64
	mod  time.Time
	ino  uint64
}

// goodFor is how long verified credentials are taken without bcrypt, and
// maxGood how many are kept.
const (
	goodFor = 5 * time.Minute
	maxGood = 10_000
)

// Open reads path.
func Open(path string) (*File, error) {
	f := &File{path: path, good: map[[32]byte]time.Time{}}
	if err := f.reload(time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) reload(now time.Time) error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return err
	}
	st := stampOf(fi)
	f.checked = now
	if f.users != nil && st == f.stamp {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	users, err := Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	f.users, f.stamp = users, st
	clear(f.good)
	return nil
}

// Verify reports whether user and password are in the file as it is now.
// A file that has become unreadable or malformed keeps its last good
// contents (and Err says why), rather than locking every user out.
func (f *File) Verify(user, password string) bool {
	now := time.Now()
	key := sha256.Sum256([]byte(user + "\x00" + password))
	f.mu.Lock()
	if now.Sub(f.checked) >= time.Second {
		f.loadErr = f.reload(now)
	}
	users := f.users
	if t, ok := f.good[key]; ok && now.Sub(t) < goodFor {
		f.mu.Unlock()
		return true
	}
	f.mu.Unlock()
	if !users.Verify(user, password) {
		return false
	}
	f.mu.Lock()
	if len(f.good) >= maxGood {
		clear(f.good)
	}
	f.good[key] = now
	f.mu.Unlock()
	return true
}

// Err is why the file could not be read again, or nil.
func (f *File) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loadErr
}
