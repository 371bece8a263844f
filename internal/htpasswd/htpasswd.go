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
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Users is a parsed file.
type Users struct {
	hashes map[string]string
	// decoys hold the first entry of each kind of hash in the file (a
	// bcrypt cost, $apr1$, {SHA}). Every check of a password costs one
	// check against each kind: the user's own hash, and the decoys of the
	// other kinds, or of all of them for a name the file lacks. So a 401
	// takes as long for a name the file lacks as for one it has, whatever
	// hash that user has: timing does not tell which names exist.
	decoys []decoy
}

type decoy struct{ kind, hash string }

// hashKind names what checking a password against h costs: bcrypt at its
// cost, $apr1$ or {SHA}.
func hashKind(h string) string {
	if strings.HasPrefix(h, "$2") && len(h) >= 7 {
		return "bcrypt" + h[4:6]
	}
	if strings.HasPrefix(h, "$apr1$") {
		return "apr1"
	}
	return "sha"
}

// Parse reads a file's contents. As Apache does, a hash ends at the next
// ':' or at trailing blanks, and a UTF-8 byte order mark is skipped.
// Errors name the line, never a hash.
func Parse(b []byte) (Users, error) {
	u := Users{hashes: map[string]string{}}
	b = bytes.TrimPrefix(b, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return Users{}, fmt.Errorf("line %d: not user:hash", n)
		}
		hash, _, _ = strings.Cut(hash, ":")
		hash = strings.TrimRight(hash, " \t")
		who := fmt.Sprintf("user %q", user)
		if strings.HasPrefix(user, "$") || strings.HasPrefix(user, "{") || len(user) > 64 {
			who = "its user name looks like a hash" // never echo one
		}
		if _, dup := u.hashes[user]; dup {
			return Users{}, fmt.Errorf("line %d: %s is listed twice", n, who)
		}
		if err := checkHash(hash); err != nil {
			return Users{}, fmt.Errorf("line %d (%s): %w", n, who, err)
		}
		u.hashes[user] = hash
		if k := hashKind(hash); !slices.ContainsFunc(u.decoys, func(d decoy) bool { return d.kind == k }) {
			u.decoys = append(u.decoys, decoy{k, hash})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Users{}, fmt.Errorf("line %d: longer than 64 KiB", n+1)
		}
		return Users{}, err
	}
	if len(u.hashes) == 0 {
		return Users{}, ErrNoUser
	}
	return u, nil
}

// ErrNoUser is a file without users: no one can get in.
var ErrNoUser = errors.New("no user: every request would be refused")

func checkHash(h string) error {
	switch {
	case strings.HasPrefix(h, "$2y$"), strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"):
		// $2y$NN$ then 53 characters of bcrypt's base64 (salt and sum).
		if _, err := bcrypt.Cost([]byte(bcryptHash(h))); err != nil || len(h) != 60 || strings.Trim(h[7:], bcryptAlphabet) != "" {
			return errors.New("malformed bcrypt hash")
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

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// bcryptHash spells $2y$ (PHP's and htpasswd's name for the same
// algorithm) as $2b$, which Go's bcrypt reads.
func bcryptHash(h string) string {
	if strings.HasPrefix(h, "$2y$") {
		return "$2b$" + h[4:]
	}
	return h
}

// MaxPassword is the longest password checked, in bytes: sixteen times
// what htpasswd accepts (255), and more than the 6 KB that fit in nginx's
// default 8 KB header buffer. A longer one is refused unhashed, whoever
// the user: $apr1$ runs MD5 over the password three thousand times, so a
// password of 700 KB (SESSIONGATE_MAX_HEADER_BYTES may allow 1 MB) cost four
// seconds of CPU, for any name, since the decoys are checked for every
// name.
const MaxPassword = 4096

// Verify reports whether password is user's. It costs the same work
// whoever the user is, known or not (see decoys).
func (u Users) Verify(user, password string) bool {
	if len(password) > MaxPassword {
		return false
	}
	hash, ok := u.hashes[user]
	own := ""
	if ok {
		own = hashKind(hash)
	}
	for _, d := range u.decoys {
		if d.kind != own {
			matches(d.hash, password)
		}
	}
	return ok && matches(hash, password)
}

func matches(hash, password string) bool {
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

// cacheKey names a user's password as checked against hash. With the hash
// in it, a password changed or a user removed since cannot match an old
// key; with bcrypt's 72-byte limit applied, one user has one key, so the
// cache holds at most one per user.
func cacheKey(user, hash, password string) [32]byte {
	if strings.HasPrefix(hash, "$2") && len(password) > 72 {
		password = password[:72]
	}
	h := sha256.New()
	for _, f := range []string{user, hash, password} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

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
// restart. A file emptied of users, or deleted, lets no one in, as with
// nginx; one that an edit left malformed keeps its last good contents, so
// that a typo does not lock everyone out, and Err says why. Verified
// credentials are remembered for a while, since bcrypt costs tens of
// milliseconds of CPU by design and a browser sends them with every
// request.
type File struct {
	path string

	mu         sync.Mutex
	users      Users
	stamp      fileStamp
	checked    time.Time
	loadErr    error
	unreported bool
	good       map[[32]byte]time.Time
}

type fileStamp struct {
	size   int64
	mod    time.Time
	ino    uint64
	change int64
}

// goodFor is how long verified credentials are taken without bcrypt.
const goodFor = 5 * time.Minute

// Open reads path.
func Open(path string) (*File, error) {
	f := &File{path: path, good: map[[32]byte]time.Time{}}
	if err := f.reload(time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads the file again if it changed. A missing or userless file
// empties the users; a malformed one is an error and changes nothing.
func (f *File) reload(now time.Time) error {
	f.checked = now
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.users, f.stamp = Users{}, fileStamp{}
		clear(f.good)
		return err
	}
	if err != nil {
		return err
	}
	st := stampOf(fi)
	if f.users.hashes != nil && st == f.stamp {
		return nil
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return err
	}
	users, err := Parse(b)
	if errors.Is(err, ErrNoUser) {
		f.users, f.stamp = Users{}, st
		clear(f.good)
		return fmt.Errorf("%s: %w", f.path, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.path, err)
	}
	f.users, f.stamp = users, st
	clear(f.good)
	return nil
}

// Verify reports whether user and password are in the file as it is now.
func (f *File) Verify(user, password string) bool {
	if len(password) > MaxPassword {
		// Before the memory of verified credentials, whose bcrypt keys
		// hold the first 72 bytes only.
		return false
	}
	now := time.Now()
	f.mu.Lock()
	if now.Sub(f.checked) >= time.Second {
		err := f.reload(now)
		// By text: each reload makes a new error value, and the same
		// problem must be reported once, not once a second.
		if fmt.Sprint(err) != fmt.Sprint(f.loadErr) {
			f.unreported = err != nil
		}
		f.loadErr = err
	}
	users := f.users
	hash, known := users.hashes[user]
	key := cacheKey(user, hash, password)
	if t, ok := f.good[key]; known && ok && now.Sub(t) < goodFor {
		f.mu.Unlock()
		return true
	}
	f.mu.Unlock()
	if !users.Verify(user, password) {
		return false
	}
	f.mu.Lock()
	// The key holds the hash: if the file changed meanwhile, it matches
	// nothing the new contents would.
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

// NewErr is Err the first time it is asked for after the file became
// unreadable, malformed or empty (or did so differently), and nil
// otherwise: one warning per problem, not one per request.
func (f *File) NewErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.unreported {
		return nil
	}
	f.unreported = false
	return f.loadErr
}
