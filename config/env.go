package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Problem is what is wrong with one variable.
type Problem struct {
	Var string // variable name, e.g. SESSIONGATE_MAX_BODY
	Msg string // what is wrong, never containing the value
	// Value is the offending raw value, shown only for variables not marked
	// secret (it is empty for secret ones).
	Value    string
	hasValue bool
}

func (p Problem) String() string {
	if p.hasValue {
		v := p.Value
		if len(v) > 80 {
			v = v[:80] + "..."
		}
		return fmt.Sprintf("%s=%q: %s", p.Var, v, p.Msg)
	}
	return p.Var + ": " + p.Msg
}

// Problems is a list of Problem in the order of the Config fields.
type Problems []Problem

func (ps Problems) has(name string) bool {
	return slices.ContainsFunc(ps, func(p Problem) bool { return p.Var == name })
}

// Error is returned by Load: every bad variable, one per line.
type Error struct {
	Problems Problems
	// Unknown holds the warnings about SESSIONGATE_ variables nothing
	// reads (a misspelt required variable shows up as "required, not
	// set", and its typo is the answer) and about values wrapped in quotes
	// (a quoted value that fails says nothing of why).
	Unknown []string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	for _, u := range e.Unknown {
		b.WriteString("\n  ")
		b.WriteString(u)
	}
	b.WriteString("\n(run `gateway -h` for the list of variables)")
	return b.String()
}

// Vars returns the names of the bad variables.
func (e *Error) Vars() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p.Var
	}
	return out
}

// Var describes one environment variable, read from the struct tags.
type Var struct {
	Name       string
	Default    string
	HasDefault bool
	Required   bool
	Secret     bool
	Help       string
	field      string
	value      reflect.Value
}

// Variables lists every variable Config reads, in field order.
func Variables() []Var {
	var c Config
	return describe(&c)
}

// describe walks the env-tagged leaves of the struct dst points to, entering
// untagged struct fields (sub-structs such as a future Session section).
func describe(dst any) []Var {
	var out []Var
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag, ok := f.Tag.Lookup("env")
			if !ok {
				if f.Type.Kind() == reflect.Struct {
					walk(v.Field(i))
				}
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || name == "" {
				continue
			}
			def, hasDef := f.Tag.Lookup("envDefault")
			out = append(out, Var{
				Name:       name,
				Default:    def,
				HasDefault: hasDef,
				Required:   slices.Contains(strings.Split(opts, ","), "notEmpty"),
				Secret:     f.Tag.Get("secret") == "true",
				Help:       f.Tag.Get("help"),
				field:      f.Name,
				value:      v.Field(i),
			})
		}
	}
	walk(reflect.ValueOf(dst).Elem())
	return out
}

// EnvironMap reads environ ("NAME=value" lines, as os.Environ gives
// them); of duplicates, the last.
func EnvironMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

// parse fills dst from the environment with caarlos0/env and turns every
// failure into a Problem named after its variable. Parse failures are caught
// in our own parser functions (caarlos0/env's messages name the Go field and
// echo the raw value, which must not happen for secrets): OnSet tells which
// variable is being converted, since env converts fields one at a time.
func parse(dst any, environ map[string]string) Problems {
	vars := describe(dst)
	secret := make(map[string]bool, len(vars))
	for _, v := range vars {
		secret[v.Name] = v.Secret
	}

	var (
		current string
		ps      Problems
	)
	wrap := func(f func(string) (any, error)) env.ParserFunc {
		return func(s string) (any, error) {
			x, err := f(s)
			if err != nil {
				p := Problem{Var: current, Msg: durationMessage(current, err)}
				if !secret[current] {
					p.Value, p.hasValue = s, true
				}
				ps = append(ps, p)
				return nil, recorded{err}
			}
			return x, nil
		}
	}
	funcs := map[reflect.Type]env.ParserFunc{}
	for t, f := range parsers {
		funcs[t] = wrap(f)
	}

	err := env.ParseWithOptions(dst, env.Options{
		Environment: environ,
		FuncMap:     funcs,
		OnSet:       func(tag string, _ any, _ bool) { current = tag },
	})
	if err == nil {
		return ps
	}
	var errs []error
	if agg, ok := errors.AsType[env.AggregateError](err); ok {
		errs = agg.Errors
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		switch e := e.(type) {
		case env.EmptyVarError:
			ps = append(ps, Problem{Var: e.Key, Msg: requiredMsg(environ, e.Key)})
		case env.VarIsNotSetError:
			ps = append(ps, Problem{Var: e.Key, Msg: requiredMsg(environ, e.Key)})
		case env.ParseError:
			// Already recorded by wrap, unless the field has a type with no
			// parser of ours (a programming error caught by the unit tests);
			// report it without the value.
			if _, ok := e.Err.(recorded); ok {
				continue
			}
			name := varOfField(vars, e.Name)
			if !ps.has(name) {
				ps = append(ps, Problem{Var: name, Msg: "cannot parse a value of type " + e.Type.String()})
			}
		default:
			ps = append(ps, Problem{Var: "(config)", Msg: e.Error()})
		}
	}
	return ps
}

// recorded marks a parser's error that wrap has already made a Problem
// of, under the variable OnSet named. env's ParseError for it names only
// the Go field, which two variables may share (Config.IdleTimeout and
// SessionConfig.IdleTimeout): looked up by that name, a bad
// SESSIONGATE_SESSION_IDLE_TIMEOUT was also reported as an unparsable
// SESSIONGATE_IDLE_TIMEOUT.
type recorded struct{ error }

// finish puts problems in field order, so the message reads like
// `gateway -h`, and attaches the raw value to those that lack it, for
// variables not marked secret.
func finish(dst any, ps Problems, environ map[string]string) Problems {
	vars := describe(dst)
	order := make(map[string]int, len(vars))
	secret := make(map[string]bool, len(vars))
	for i, v := range vars {
		order[v.Name] = i
		secret[v.Name] = v.Secret
	}
	for i := range ps {
		if v, set := environ[ps[i].Var]; set && v != "" && !ps[i].hasValue && !secret[ps[i].Var] {
			ps[i].Value, ps[i].hasValue = v, true
		}
		// A URL refused because it carries credentials (a Django URL) is
		// still shown, but not its password. (Messages about secret
		// variables never quote their value.)
		if !secret[ps[i].Var] {
			infos := userinfos(environ[ps[i].Var])
			ps[i].Value = redactUserinfo(maskAll(ps[i].Value, infos))
			ps[i].Msg = redactUserinfo(maskAll(ps[i].Msg, infos))
		}
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return order[a.Var] - order[b.Var] })
	return ps
}

// redactUserinfo masks the user info of every URL in s
// ("http://u:pw@h:80" becomes "http://xxxxx@h:80"). The user info ends at
// the last '@' before the end of the list entry or quoted string, so a
// password holding an unencoded '/' is masked whole.
func redactUserinfo(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+3])
		s = s[i+3:]
		end := strings.IndexAny(s, "\",' \t\n")
		if end < 0 {
			end = len(s)
		}
		if at := strings.LastIndexByte(s[:end], '@'); at >= 0 {
			b.WriteString("xxxxx")
			s = s[at:]
		}
	}
}

// userinfos returns the user info of every URL in a variable's raw
// value, each entry's up to its last '@'. redactUserinfo finds the end of
// a URL at a quote or a space, which a password may hold as well: these
// are masked first, wherever they show.
func userinfos(raw string) []string {
	var out []string
	for entry := range strings.SplitSeq(raw, ",") {
		i := strings.Index(entry, "://")
		if i < 0 {
			continue
		}
		rest := entry[i+3:]
		if at := strings.LastIndexByte(rest, '@'); at > 0 {
			out = append(out, rest[:at])
		}
	}
	return out
}

// maskAll replaces each of secrets in s, as written and as %q quotes it,
// with xxxxx.
func maskAll(s string, secrets []string) string {
	for _, x := range secrets {
		for _, form := range []string{x, quotedText(x, strconv.Quote), quotedText(x, strconv.QuoteToASCII)} {
			s = strings.ReplaceAll(s, form, "xxxxx")
		}
	}
	return s
}

// quotedText is s as quote writes it, without the quotes around it.
func quotedText(s string, quote func(string) string) string {
	q := quote(s)
	return q[1 : len(q)-1]
}

// varOfField maps a Go field name (what env.ParseError carries) back to its
// variable name.
func varOfField(vars []Var, field string) string {
	for _, v := range vars {
		if v.field == field {
			return v.Name
		}
	}
	return field
}

func requiredMsg(environ map[string]string, key string) string {
	if _, ok := environ[key]; ok {
		return "required, but set to the empty string"
	}
	return "required, not set"
}

// unknownVariables returns a warning for each SESSIONGATE_ variable in the
// environment that no field reads: most likely a typo that would otherwise
// silently leave a default in place.
func unknownVariables(dst any, environ map[string]string) []string {
	known := map[string]bool{}
	for _, v := range describe(dst) {
		known[v.Name] = true
	}
	var out []string
	for k := range environ {
		if !strings.HasPrefix(k, Prefix) || known[k] {
			continue
		}
		switch trimmed := strings.ToUpper(strings.TrimSpace(k)); {
		case trimmed != k && known[trimmed]:
			// `SESSIONGATE_LISTEN = :8080` in an env file, or a lower-case
			// letter: printed bare, the name looks like a known one.
			out = append(out, fmt.Sprintf("unknown variable %q ignored: %s spelt otherwise (spaces or case)", k, trimmed))
		case strings.TrimFunc(k, isNameChar) != "":
			out = append(out, fmt.Sprintf("unknown variable %q ignored (typo?)", k))
		default:
			if meant := nearestName(k, known); meant != "" {
				out = append(out, fmt.Sprintf("unknown variable %s ignored: did you mean %s?", k, meant))
			} else {
				out = append(out, fmt.Sprintf("unknown variable %s ignored (typo?)", k))
			}
		}
	}
	slices.Sort(out)
	return out
}

// quotedValues returns a note for each variable whose whole value is
// wrapped in a pair of quotes. `docker run --env-file` and Kubernetes keep
// the quotes of KEY="value" (systemd's EnvironmentFile and shells remove
// them): a quoted path or size then fails with a message about a value
// that looks right, and a quoted session key is taken with its quotes, so
// Django, given the key without them, refuses every session. The value is
// never echoed: it may be a secret.
func quotedValues(dst any, environ map[string]string) []string {
	var out []string
	for _, v := range describe(dst) {
		val, ok := environ[v.Name]
		if !ok || len(val) < 2 {
			continue
		}
		if q := val[0]; (q == '"' || q == '\'') && val[len(val)-1] == q {
			out = append(out, fmt.Sprintf("%s's value is wrapped in quotes, which are kept as part of it (docker --env-file and Kubernetes keep them; systemd's EnvironmentFile and shells remove them): write it without the quotes", v.Name))
		}
	}
	return out
}

// maxTypoEdits is how far a misspelt name may be from the variable it is
// taken for: one or two slips of the finger. Known names are at least two
// apart (SESSIONGATE_READ_TIMEOUT and SESSIONGATE_SEND_TIMEOUT), so a name
// may be as near two of them; nearestName then names neither.
const maxTypoEdits = 2

// nearestName is the known variable name an unknown one most likely
// misspells, or "" when none is within maxTypoEdits or two are as near:
// a list of seventy names is no help to a reader looking for the one
// meant, and a wrong guess is worse than none.
func nearestName(name string, known map[string]bool) string {
	best, bestEdits, tie := "", maxTypoEdits+1, false
	for k := range known {
		switch d := editDistance(name, k); {
		case d < bestEdits:
			best, bestEdits, tie = k, d, false
		case d == bestEdits:
			tie = true
		}
	}
	if tie || best == "" {
		return ""
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of adjacent letters that turn a into b (optimal string alignment), a
// swap being one slip (PHP_FMP for PHP_FPM), not two.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// isNameChar: the characters of a variable name a shell accepts.
func isNameChar(r rune) bool {
	return r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
}

// WriteHelp prints every variable with its default and meaning, for
// `gateway -h`.
func WriteHelp(w io.Writer) error {
	var b strings.Builder
	for _, v := range Variables() {
		b.WriteString("  ")
		b.WriteString(v.Name)
		switch {
		case v.Required:
			b.WriteString("  (required)")
		case v.HasDefault:
			fmt.Fprintf(&b, "  (default %q)", v.Default)
		default:
			// Not "optional": some are required in some setups, which
			// their help says (SESSIONGATE_SESSION_KEYS).
			b.WriteString("  (no default)")
		}
		if v.Secret {
			b.WriteString(" (secret: never logged)")
		}
		b.WriteString("\n      ")
		b.WriteString(v.Help)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// LogValue renders the effective configuration for the start-up log line:
// every variable by name, secret values replaced by "[redacted]".
func (c *Config) LogValue() slog.Value { return logValue(c) }

func logValue(dst any) slog.Value {
	vars := describe(dst)
	attrs := make([]slog.Attr, 0, len(vars))
	for _, v := range vars {
		s := display(v.value)
		if v.Secret && s != "" {
			s = "[redacted]"
		}
		attrs = append(attrs, slog.String(v.Name, s))
	}
	return slog.GroupValue(attrs...)
}

// display formats a parsed value the way an operator would write it.
func display(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case ByteSize:
		return x.String()
	case bool:
		if x {
			return "on"
		}
		return "off"
	case []string:
		return strings.Join(x, ",")
	case Lines:
		return strings.Join(x, "\n")
	case Prefixes:
		s := make([]string, len(x))
		for i, p := range x {
			s[i] = p.String()
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprint(v.Interface())
}
