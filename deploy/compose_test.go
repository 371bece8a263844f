package deploy

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessiongate/sessiongate/config"
)

// composeFile models the part of the Compose specification the example
// uses. Decoding with KnownFields makes a misspelt key an error instead of
// a silently ignored setting.
type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Build       *composeBuild                `yaml:"build"`
	Image       string                       `yaml:"image"`
	Ports       []string                     `yaml:"ports"`
	Environment map[string]string            `yaml:"environment"`
	Volumes     []string                     `yaml:"volumes"`
	ReadOnly    bool                         `yaml:"read_only"`
	CapDrop     []string                     `yaml:"cap_drop"`
	SecurityOpt []string                     `yaml:"security_opt"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
	Restart     string                       `yaml:"restart"`
	Healthcheck *composeHealthcheck          `yaml:"healthcheck"`
	Command     []string                     `yaml:"command"`
	// StopGracePeriod is how long `docker compose stop` waits after
	// SIGTERM before it kills (Docker's default: 10s).
	StopGracePeriod string `yaml:"stop_grace_period"`
}

// composeBuild accepts both "build: dir" and "build: {context, dockerfile}".
type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test     []string `yaml:"test"`
	Interval string   `yaml:"interval"`
	Timeout  string   `yaml:"timeout"`
	Retries  int      `yaml:"retries"`
}

// interpolation is Compose's ${NAME}, ${NAME:-default}, ${NAME:?error}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate substitutes variables from env the way `docker compose`
// does, failing on a required one that is unset.
func interpolate(s string, env map[string]string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(s, func(m string) string {
		p := interpolation.FindStringSubmatch(m)
		v, set := env[p[1]]
		switch p[2] {
		case ":-", "-":
			if !set || (p[2] == ":-" && v == "") {
				return p[3]
			}
		case ":?", "?":
			if !set || (p[2] == ":?" && v == "") {
				err = fmt.Errorf("required variable %s is missing a value: %s", p[1], p[3])
			}
		}
		return v
	})
	if strings.Contains(strings.ReplaceAll(out, "$$", ""), "$") && err == nil {
		err = fmt.Errorf("unsupported interpolation in %q", s)
	}
	return out, err
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return &c
}

// mount is one "source:target[:mode]" volume entry.
type mount struct{ Source, Target, Mode string }

func mounts(t *testing.T, svc string, s *composeService) []mount {
	t.Helper()
	var out []mount
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || len(parts) > 3 {
			t.Errorf("%s: volume %q: want source:target[:mode]", svc, v)
			continue
		}
		m := mount{Source: parts[0], Target: parts[1]}
		if len(parts) == 3 {
			m.Mode = parts[2]
		}
		out = append(out, m)
	}
	return out
}

// hostPathOf returns the repository-relative source mounted at target in
// svc ("" if target is not a bind mount of the service). A target inside a
// mounted directory resolves to the matching path under the source.
func hostPathOf(t *testing.T, svc string, s *composeService, target string) string {
	t.Helper()
	for _, m := range mounts(t, svc, s) {
		if !strings.HasPrefix(m.Source, "./") {
			continue
		}
		if target == m.Target {
			return m.Source
		}
		if rest, ok := strings.CutPrefix(target, m.Target+"/"); ok {
			return m.Source + "/" + rest
		}
	}
	return ""
}

func TestComposeFile(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"gateway", "php", "redis", "django"} {
		if c.Services[name] == nil {
			t.Fatalf("docker-compose.yml: no %s service", name)
		}
	}
	if img := c.Services["php"].Image; img != "php:8.2-fpm" {
		t.Errorf("php image %q, want php:8.2-fpm", img)
	}
	if img := c.Services["redis"].Image; !strings.HasPrefix(img, "redis:7") {
		t.Errorf("redis image %q, want redis:7", img)
	}

	known := knownVariables()
	secret := "compose-test-secret-0123456789abcdef0123456789"
	hostEnv := map[string]string{"SESSIONGATE_SESSION_KEYS": secret, "DJANGO_SECRET_KEY": "django-secret"}
	for name, s := range c.Services {
		if s.Build == nil && s.Image == "" {
			t.Errorf("%s: neither image nor build", name)
		}
		if s.Build != nil {
			checkPath(t, name+" build context", s.Build.Context)
			df := s.Build.Dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			checkPath(t, name+" Dockerfile", path.Join(s.Build.Context, df))
		}
		for _, m := range mounts(t, name, s) {
			switch {
			case strings.HasPrefix(m.Source, "./"):
				checkPath(t, name+" volume", m.Source)
				if m.Mode != "ro" {
					t.Errorf("%s: bind mount %s is writable; the example mounts code read-only", name, m.Source)
				}
			case strings.HasPrefix(m.Source, "/"):
				t.Errorf("%s: absolute host path %s in an example", name, m.Source)
			default:
				if _, ok := c.Volumes[m.Source]; !ok {
					t.Errorf("%s: named volume %s is not declared", name, m.Source)
				}
			}
		}
		for dep := range s.DependsOn {
			if c.Services[dep] == nil {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			if s.DependsOn[dep].Condition == "service_healthy" && c.Services[dep].Healthcheck == nil {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
		for k, v := range s.Environment {
			if strings.HasPrefix(k, config.Prefix) && !known[k] {
				t.Errorf("%s: %s is not a variable the gateway knows", name, k)
			}
			if _, err := interpolate(v, hostEnv); err != nil {
				t.Errorf("%s: %s: %v", name, k, err)
			}
			if _, err := interpolate(v, nil); err == nil && strings.Contains(v, "${SESSIONGATE_SESSION_KEYS") {
				t.Errorf("%s: %s does not insist on SESSIONGATE_SESSION_KEYS being set", name, k)
			}
		}
	}
	// The secret never sits in the file: it comes from the environment of
	// `docker compose`.
	for name, s := range c.Services {
		if v, ok := s.Environment["SESSIONGATE_SESSION_KEYS"]; ok && !strings.HasPrefix(v, "${") {
			t.Errorf("%s: docker-compose.yml holds a literal session key", name)
		}
	}
}

// TestComposeGatewayConfig loads the gateway service's environment through
// the gateway's own configuration rules (as the container would at start)
// and checks it agrees with the rest of the file: the paths php-fpm and the
// gateway see are the same directory, the prepend file is where
// SESSIONGATE_PHP_PREPEND says, and the upstreams are services of this file.
func TestComposeGatewayConfig(t *testing.T) {
	c := loadCompose(t)
	gw, php := c.Services["gateway"], c.Services["php"]
	if gw == nil || php == nil {
		t.Fatal("no gateway or php service")
	}
	secret := "compose-test-secret-0123456789abcdef0123456789"
	env := map[string]string{}
	for k, v := range gw.Environment {
		s, err := interpolate(v, map[string]string{"SESSIONGATE_SESSION_KEYS": secret})
		if err != nil {
			t.Fatal(err)
		}
		env[k] = s
	}
	// The gateway reads SESSIONGATE_STATIC_ROOT from its mount: give the
	// configuration the directory behind it.
	staticSrc := hostPathOf(t, "gateway", gw, env["SESSIONGATE_STATIC_ROOT"])
	if staticSrc == "" {
		t.Fatalf("SESSIONGATE_STATIC_ROOT=%s is not mounted into the gateway", env["SESSIONGATE_STATIC_ROOT"])
	}
	abs, err := filepath.Abs(filepath.Join(repoRoot, staticSrc))
	if err != nil {
		t.Fatal(err)
	}
	var environ []string
	for k, v := range env {
		if k == "SESSIONGATE_STATIC_ROOT" {
			v = abs
		}
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load(environ)
	if err != nil {
		t.Fatalf("the gateway would not start with this environment: %v", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("configuration warnings: %v", cfg.Warnings)
	}
	// The YAML block gives one header per line.
	if h := cfg.ResponseHeaders(); len(h) != 3 || h[0].Name != "X-Frame-Options" || h[0].Value != "SAMEORIGIN" {
		t.Errorf("SESSIONGATE_RESPONSE_HEADERS from the YAML block: %+v", h)
	}

	// php-fpm sees the same directory at SESSIONGATE_DOCUMENT_ROOT.
	if src := hostPathOf(t, "php", php, cfg.DocumentRoot); path.Clean(src) != path.Clean(staticSrc) {
		t.Errorf("php mounts %q at DOCUMENT_ROOT %s, the gateway %q at STATIC_ROOT", src, cfg.DocumentRoot, staticSrc)
	}
	// The index script exists in the site.
	if idx := cfg.IndexScript(); idx != "" {
		checkPath(t, "front controller", staticSrc+idx)
	}
	// The prepend file is mounted where SESSIONGATE_PHP_PREPEND points.
	if cfg.Session.PHPPrepend == "" {
		t.Error("SESSIONGATE_PHP_PREPEND is not set: php-fpm would not load the prepend")
	} else if src := hostPathOf(t, "php", php, cfg.Session.PHPPrepend); path.Clean(src) != "sessionbridge/prepend.php" {
		t.Errorf("php mounts %q at SESSIONGATE_PHP_PREPEND %s, want ./sessionbridge/prepend.php", src, cfg.Session.PHPPrepend)
	}

	// Upstreams are services of this file.
	for _, a := range cfg.PHPFPM {
		host, _, err := net.SplitHostPort(a)
		if err != nil || c.Services[host] == nil || !strings.HasPrefix(c.Services[host].Image, "php:") {
			t.Errorf("SESSIONGATE_PHP_FPM %s is not the php-fpm service", a)
		}
	}
	ru, err := url.Parse(cfg.Session.RedisURL)
	if err != nil || c.Services[ru.Hostname()] == nil || !strings.HasPrefix(c.Services[ru.Hostname()].Image, "redis:") {
		t.Errorf("SESSIONGATE_REDIS_URL %q is not the redis service", cfg.Session.RedisURL)
	}
	if dj := env["SESSIONGATE_DJANGO_URL"]; dj != "" {
		u, err := url.Parse(dj)
		if err != nil || c.Services[u.Hostname()] == nil {
			t.Errorf("SESSIONGATE_DJANGO_URL %q is not a service", dj)
		} else if d := c.Services[u.Hostname()]; d.Environment["SESSIONGATE_SESSION_KEYS"] != gw.Environment["SESSIONGATE_SESSION_KEYS"] {
			t.Error("the Django service does not get the gateway's SESSIONGATE_SESSION_KEYS")
		}
	}

	// Both listeners are published; the admin one on loopback only.
	published := map[string]string{} // container port -> host part
	for _, p := range gw.Ports {
		i := strings.LastIndexByte(p, ':')
		published[p[i+1:]] = p[:i]
	}
	for name, addr := range map[string]string{"SESSIONGATE_LISTEN": cfg.Listen, "SESSIONGATE_ADMIN_LISTEN": cfg.AdminListen} {
		_, port, _ := net.SplitHostPort(addr)
		host, ok := published[port]
		if !ok {
			t.Errorf("%s port %s is not published", name, port)
		}
		if name == "SESSIONGATE_ADMIN_LISTEN" && !strings.HasPrefix(host, "127.0.0.1:") {
			t.Errorf("admin port published on %q, want 127.0.0.1 only", host)
		}
	}

	// `docker compose stop` (and down, and a restart) must leave the
	// gateway the drain the README promises: SESSIONGATE_SHUTDOWN_TIMEOUT
	// for in-flight requests, then up to 5s (3x SESSIONGATE_REDIS_TIMEOUT
	// when longer) for the handlers of cut connections to release their
	// session locks, then up to 1s to close
	// the admin listener. Killed earlier, a request is cut mid-response and
	// the session locks it holds stay until their lease ends.
	grace := 10 * time.Second // Docker's default
	if gw.StopGracePeriod != "" {
		if grace, err = time.ParseDuration(gw.StopGracePeriod); err != nil {
			t.Fatalf("gateway stop_grace_period %q: %v", gw.StopGracePeriod, err)
		}
	}
	cutGrace := max(5*time.Second, 3*cfg.Session.RedisTimeout)
	if need := cfg.ShutdownTimeout + cutGrace + time.Second; grace <= need {
		t.Errorf("the gateway is killed %v after SIGTERM (stop_grace_period), but its drain may take up to %v (SESSIONGATE_SHUTDOWN_TIMEOUT %v + %v + 1s): set stop_grace_period above it",
			grace, need, cfg.ShutdownTimeout, cutGrace)
	}

	// The gateway's pool fits in php-fpm's (an idle kept-alive connection
	// pins a worker).
	if children := maxChildren(t, "php-fpm/zz-sessiongate.conf"); cfg.PHPMaxConns > children {
		t.Errorf("SESSIONGATE_PHP_MAX_CONNS %d > pm.max_children %d", cfg.PHPMaxConns, children)
	}
	if hostPathOf(t, "php", php, "/usr/local/etc/php-fpm.d/zz-sessiongate.conf") != "./deploy/php-fpm/zz-sessiongate.conf" {
		t.Error("the pool settings are not mounted into php-fpm's pool directory")
	}
}

// TestComposeValidates asks Docker's own Compose to validate the file (it
// needs no engine for that). scripts/deps.sh installs Debian's
// docker-compose for `make test`.
func TestComposeValidates(t *testing.T) {
	var argv []string
	if exec.Command("docker", "compose", "version").Run() == nil {
		argv = []string{"docker", "compose"}
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		argv = []string{p}
	} else {
		t.Fatal("neither `docker compose` nor docker-compose is installed: apt-get install -y docker-compose")
	}
	cmd := exec.Command(argv[0], append(argv[1:], "-f", "docker-compose.yml", "config", "-q")...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "SESSIONGATE_SESSION_KEYS=compose-test-secret-0123456789abcdef0123456789", "DJANGO_SECRET_KEY=django-secret")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s config: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func TestInterpolate(t *testing.T) {
	env := map[string]string{"A": "x", "E": ""}
	for in, want := range map[string]string{
		"${A}": "x", "${B:-d}": "d", "${E:-d}": "d", "${E-d}": "", "${A:?m}": "x", "p-${A}-s": "p-x-s", "plain": "plain",
	} {
		if got, err := interpolate(in, env); err != nil || got != want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${B:?missing}", "${E:?empty}", "$A"} {
		if _, err := interpolate(in, env); err == nil {
			t.Errorf("interpolate(%q): no error", in)
		}
	}
}
