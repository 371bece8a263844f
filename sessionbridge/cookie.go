package sessionbridge

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/securecookie"
)

// MinKeyLen is the shortest secret accepted in SESSIONGATE_SESSION_KEYS: a
// 256-bit HMAC key deserves at least 32 bytes of secret.
const MinKeyLen = 32

// idBytes is the entropy of a session ID (256 bits), hex encoded to 64
// characters: the alphabet PHP's session_id() accepts without complaint.
const idBytes = 32

// NewID returns a fresh random session ID.
func NewID() string {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand never fails on supported platforms; a broken RNG must
		// never silently produce guessable IDs.
		panic(fmt.Sprintf("sessionbridge: crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has the shape of an ID we mint. It also guards
// what a PHP script reports back (session_regenerate_id) before it becomes a
// Redis key or a cookie.
func ValidID(id string) bool {
	if len(id) != 2*idBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// DeriveKey turns one configured secret into a key for one purpose, so the
// cookie HMAC, cookie encryption and the Django header signature never share
// key material. Other implementations (wsgi/django) must derive the same way:
// HMAC-SHA256(secret, "sessiongate:" + purpose).
func DeriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sessiongate:" + purpose))
	return m.Sum(nil)
}

// CookieOptions are the attributes of the session cookie.
type CookieOptions struct {
	Name   string
	Domain string
	// Secure forces the Secure attribute; requests over HTTPS always get it.
	Secure bool
	// MaxAge is the absolute lifetime: the cookie's Max-Age and the oldest
	// signature timestamp accepted.
	MaxAge time.Duration
	// Encrypt adds AES encryption of the cookie value on top of the HMAC.
	Encrypt bool
	// SameSite is the cookie's SameSite attribute; zero means Lax. None is
	// for sites that a payment provider or identity provider posts back to
	// from another site; browsers accept it only with Secure.
	SameSite http.SameSite
	// BrowserSession leaves Max-Age out, so the cookie ends when the
	// browser closes (PHP's default session.cookie_lifetime=0). An app's
	// own expiry in seconds still makes a session's cookie persistent.
	BrowserSession bool
}

// cookieCodec signs and verifies session cookies. The first secret signs,
// all of them verify, so keys rotate without logging everybody out.
//
// For the same reason a cookie verifies whether or not it is encrypted:
// turning SESSIONGATE_SESSION_ENCRYPT on or off is a rolling change too
// (gateways with either setting serve the same users meanwhile, and every
// cookie set before it stays in browsers). Either form needs a valid HMAC
// under one of the keys, so accepting both forges nothing; what a gateway
// sets always follows its own setting.
type cookieCodec struct {
	opts CookieOptions
	// codecs verify: every secret in the configured form first (codecs[0]
	// signs), then every secret in the other form.
	codecs []securecookie.Codec
}

func newCookieCodec(secrets [][]byte, o CookieOptions) (*cookieCodec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no session key")
	}
	if o.Name == "" {
		return nil, errors.New("empty cookie name")
	}
	if o.MaxAge <= 0 {
		return nil, errors.New("cookie max age must be positive")
	}
	c := &cookieCodec{opts: o}
	for i, s := range secrets {
		if len(s) < MinKeyLen {
			return nil, fmt.Errorf("session key %d is %d bytes, need at least %d", i+1, len(s), MinKeyLen)
		}
	}
	for _, encrypt := range []bool{o.Encrypt, !o.Encrypt} {
		for _, s := range secrets {
			var block []byte
			if encrypt {
				block = DeriveKey(s, "cookie-encryption")
			}
			sc := securecookie.New(DeriveKey(s, "cookie-signing"), block)
			sc.SetSerializer(securecookie.JSONEncoder{})
			sc.MaxAge(int(o.MaxAge / time.Second))
			sc.MaxLength(4096)
			c.codecs = append(c.codecs, sc)
		}
	}
	// securecookie.New never fails; encoding once surfaces a bad key now
	// rather than on the first login.
	if _, err := securecookie.EncodeMulti(o.Name, NewID(), c.codecs...); err != nil {
		return nil, fmt.Errorf("session key check: %w", err)
	}
	return c, nil
}

// maxSameNameCookies bounds how many cookies of the session cookie's name
// one request may make us verify.
const maxSameNameCookies = 8

// idsFrom returns the verified session IDs carried by the request's
// cookies, in the order the client sent them, without duplicates. A forged,
// expired or malformed cookie is simply no session: no error the caller
// could turn into a store lookup.
//
// A browser sends every cookie of the name that matches the request, and
// ours need not come first: another app's cookie of the same name set for a
// parent domain (Django's default is "sessionid" too), a stale one, or one
// a sibling subdomain planted. Taking only the first, as r.Cookie does,
// would hide the session for good (each new cookie we set still comes after
// the older one). Even a cookie that verifies can be stale: once
// SESSIONGATE_SESSION_COOKIE_DOMAIN changes, a host-only cookie of a
// session that has ended stays next to the new Domain cookie and is sent
// first. So every verified ID is returned and Open takes the first that
// names a live session.
func (c *cookieCodec) idsFrom(r *http.Request) []string {
	var ids []string
	for i, ck := range r.CookiesNamed(c.opts.Name) {
		if i == maxSameNameCookies {
			break
		}
		if ck.Value == "" {
			continue
		}
		var id string
		if err := securecookie.DecodeMulti(c.opts.Name, ck.Value, &id, c.codecs...); err != nil {
			continue
		}
		if ValidID(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// cookie builds the Set-Cookie for id; an empty id expires the cookie.
func (c *cookieCodec) cookie(id string, https bool) (*http.Cookie, error) {
	ck := &http.Cookie{
		Name:     c.opts.Name,
		Path:     "/",
		Domain:   c.opts.Domain,
		HttpOnly: true,
		Secure:   https || c.opts.Secure,
		SameSite: c.opts.SameSite,
	}
	if ck.SameSite == 0 {
		ck.SameSite = http.SameSiteLaxMode
	}
	if id == "" {
		ck.MaxAge = -1
		return ck, nil
	}
	v, err := securecookie.EncodeMulti(c.opts.Name, id, c.codecs[0])
	if err != nil {
		return nil, fmt.Errorf("encode session cookie: %w", err)
	}
	ck.Value = v
	ck.MaxAge = int(c.opts.MaxAge / time.Second)
	return ck, nil
}
