// Package deploy holds the deployment files that are not Go: the pool
// snippet for php-fpm, the Django example image and the systemd unit. Its
// tests check what can be checked without a Docker engine or a running
// systemd: the Dockerfile's build step, run for real; the instructions of
// the images; docker-compose.yml and the unit's environment file against
// the gateway's own configuration rules; the unit with systemd-analyze.
package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/sessionbridge"
)

// repoRoot is the repository root (the Docker build context).
const repoRoot = ".."

// pendingPaths are paths the deployment files reference that another part
// of issue 4 adds (the example Django project and the Python package). While
// they are missing the checks say so in the test log instead of failing;
// once they exist they are checked like any other path.
var pendingPaths = map[string]bool{
	"examples/django": true,
	"wsgi/django":     true,
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd   string // upper case: FROM, RUN, COPY, ...
	Args  string
	Line  int
	Stage int // index of the FROM it belongs to
}

// parseDockerfile reads the subset of Dockerfile syntax the project's files
// use: one instruction per logical line, "\" continuations, # comments
// (also between continued lines), parser directives as comments.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []instruction
		cur     strings.Builder
		start   int
		stage   = -1
		pending bool
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !pending {
			start = n
			cur.Reset()
		}
		body, cont := strings.CutSuffix(line, "\\")
		cur.WriteString(strings.TrimSpace(body))
		cur.WriteString(" ")
		pending = cont
		if cont {
			continue
		}
		text := strings.TrimSpace(cur.String())
		cmd, args, _ := strings.Cut(text, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		if stage < 0 && cmd != "ARG" {
			t.Fatalf("%s:%d: %s before FROM", path, start, cmd)
		}
		out = append(out, instruction{Cmd: cmd, Args: strings.TrimSpace(args), Line: start, Stage: stage})
	}
	if pending {
		t.Fatalf("%s: ends in a continuation", path)
	}
	return out
}

func find(ins []instruction, cmd string, stage int) []instruction {
	var out []instruction
	for _, in := range ins {
		if in.Cmd == cmd && (stage < 0 || in.Stage == stage) {
			out = append(out, in)
		}
	}
	return out
}

func lastStage(ins []instruction) int { return ins[len(ins)-1].Stage }

// checkPath fails the test if rel (relative to the repository root) does
// not exist, unless it is pending work (logged).
func checkPath(t *testing.T, where, rel string) {
	t.Helper()
	rel = filepath.Clean(strings.TrimPrefix(rel, "./"))
	if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
		for p := range pendingPaths {
			if rel == p || strings.HasPrefix(rel, p+"/") {
				t.Logf("NOTE %s: %s does not exist yet (pending: added by another part of issue 4)", where, rel)
				return
			}
		}
		t.Errorf("%s: %s: %v", where, rel, err)
	}
}

func knownVariables() map[string]bool {
	known := map[string]bool{}
	for _, v := range config.Variables() {
		known[v.Name] = true
	}
	return known
}

// TestDockerfileBuildStep runs the Dockerfile's build step, exactly as
// written, outside Docker, and checks what it produces: a static Linux
// binary (it must run on distroless/static) and the prepend file.
func TestDockerfileBuildStep(t *testing.T) {
	ins := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	var build *instruction
	for i, in := range ins {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			if build != nil {
				t.Fatalf("Dockerfile:%d: a second go build step", in.Line)
			}
			build = &ins[i]
		}
	}
	if build == nil {
		t.Fatal("Dockerfile: no RUN with go build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-o "$OUT/gateway"`, "./cmd/gateway", `php-prepend > "$OUT/prepend.php"`} {
		if !strings.Contains(build.Args, want) {
			t.Errorf("Dockerfile:%d: build step lacks %q: %s", build.Line, want, build.Args)
		}
	}
	if strings.HasPrefix(build.Args, "[") {
		t.Fatalf("Dockerfile:%d: the build step must be a shell command", build.Line)
	}

	out := t.TempDir()
	cmd := exec.Command("sh", "-c", build.Args)
	cmd.Dir = repoRoot // WORKDIR /src holds the repository (COPY . .)
	cmd.Env = append(os.Environ(), "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build step failed: %v\n%s", err, b)
	}

	bin := filepath.Join(out, "gateway")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	if f.Section(".interp") != nil {
		t.Error("binary has an .interp section")
	}
	if runtime.GOOS == "linux" {
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
		if want != 0 && f.Machine != want {
			t.Errorf("binary machine %v, want %v", f.Machine, want)
		}
	}
	// -trimpath: no build directory inside.
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if abs, _ := filepath.Abs(repoRoot); bytes.Contains(raw, []byte(abs+"/")) {
		t.Errorf("binary contains the build path %s", abs)
	}

	prepend, err := os.ReadFile(filepath.Join(out, "prepend.php"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(prepend, sessionbridge.PrependPHP) {
		t.Error("the image's prepend.php differs from the one the binary embeds")
	}
	// docker-compose.yml mounts the repository's copy into php-fpm.
	repoCopy, err := os.ReadFile(filepath.Join(repoRoot, "sessionbridge", "prepend.php"))
	if err != nil || !bytes.Equal(repoCopy, prepend) {
		t.Errorf("sessionbridge/prepend.php differs from `gateway php-prepend` (%v)", err)
	}

	// The binary runs and knows its subcommands.
	if b, err := exec.Command(bin, "-h").CombinedOutput(); err != nil || !bytes.Contains(b, []byte("healthcheck")) {
		t.Errorf("gateway -h: %v\n%s", err, b)
	}
}

// TestDockerfileImage checks the instructions of both stages.
func TestDockerfileImage(t *testing.T) {
	ins := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	last := lastStage(ins)
	if last < 1 {
		t.Fatal("Dockerfile: want a build stage and a runtime stage")
	}

	// Build stage: the Go release go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	from := find(ins, "FROM", 0)[0].Args
	if goVer == nil || !strings.HasPrefix(from, "golang:"+string(goVer[1])) {
		t.Errorf("build stage FROM %q does not match go.mod's go %s", from, goVer[1])
	}
	m := regexp.MustCompile(`(?i)\s+AS\s+(\S+)$`).FindStringSubmatch(from)
	if m == nil {
		t.Fatalf("build stage FROM %q has no name", from)
	}
	stageName := m[1]
	for _, c := range find(ins, "COPY", 0) {
		f := strings.Fields(c.Args)
		for _, src := range f[:len(f)-1] {
			checkPath(t, "Dockerfile COPY", src)
		}
	}
	outDir := ""
	for _, a := range find(ins, "ARG", 0) {
		if v, ok := strings.CutPrefix(a.Args, "OUT="); ok {
			outDir = v
		}
	}
	if outDir == "" {
		t.Fatal("build stage: no ARG OUT=<dir> default")
	}

	// Runtime stage.
	final := find(ins, "FROM", last)[0].Args
	if strings.HasPrefix(final, "golang") {
		t.Errorf("runtime stage is the Go toolchain image %q", final)
	}
	copies := map[string]string{} // destination -> source
	for _, c := range find(ins, "COPY", last) {
		f := strings.Fields(c.Args)
		if len(f) == 3 && f[0] == "--from="+stageName {
			copies[f[2]] = f[1]
		}
	}
	for dst, src := range map[string]string{
		"/usr/local/bin/gateway":             outDir + "/gateway",
		"/usr/share/sessiongate/prepend.php": outDir + "/prepend.php",
	} {
		if copies[dst] != src {
			t.Errorf("runtime stage: %s comes from %q, want %q (the build step's output)", dst, copies[dst], src)
		}
	}
	users := find(ins, "USER", last)
	if len(users) == 0 {
		t.Error("runtime stage runs as root: no USER")
	} else if u := strings.Split(users[len(users)-1].Args, ":")[0]; u == "root" || u == "0" {
		t.Errorf("runtime stage USER %q is root", users[len(users)-1].Args)
	}

	env := map[string]string{}
	known := knownVariables()
	for _, e := range find(ins, "ENV", last) {
		for _, kv := range strings.Fields(e.Args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Errorf("Dockerfile:%d: ENV %q: use NAME=value", e.Line, kv)
				continue
			}
			env[k] = v
			if strings.HasPrefix(k, config.Prefix) && !known[k] {
				t.Errorf("Dockerfile:%d: ENV %s is not a gateway variable", e.Line, k)
			}
		}
	}
	if env["SESSIONGATE_ADMIN_LISTEN"] == "" {
		t.Error("runtime stage: no SESSIONGATE_ADMIN_LISTEN, so HEALTHCHECK has nothing to probe")
	}
	exposed := map[string]bool{}
	for _, e := range find(ins, "EXPOSE", last) {
		for _, p := range strings.Fields(e.Args) {
			exposed[strings.TrimSuffix(p, "/tcp")] = true
		}
	}
	for _, name := range []string{"SESSIONGATE_LISTEN", "SESSIONGATE_ADMIN_LISTEN"} {
		if _, port, _ := strings.Cut(env[name], ":"); port == "" || !exposed[port] {
			t.Errorf("%s=%q: port not in EXPOSE %v", name, env[name], exposed)
		}
	}
	hc := find(ins, "HEALTHCHECK", last)
	if len(hc) != 1 || !strings.Contains(hc[0].Args, `CMD ["/usr/local/bin/gateway", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK %v: want the exec form of gateway healthcheck", hc)
	}
	if ep := find(ins, "ENTRYPOINT", last); len(ep) != 1 || ep[0].Args != `["/usr/local/bin/gateway"]` {
		t.Errorf("ENTRYPOINT %v", ep)
	}
}

// TestDjangoDockerfile: the example Django image copies what exists and
// installs the sessiongate_django package.
func TestDjangoDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "django.Dockerfile")
	if from := find(ins, "FROM", 0); len(from) != 1 || !strings.HasPrefix(from[0].Args, "python:3.11-slim") {
		t.Errorf("FROM %v", from)
	}
	for _, c := range find(ins, "COPY", -1) {
		f := strings.Fields(c.Args)
		for _, src := range f[:len(f)-1] {
			checkPath(t, "deploy/django.Dockerfile COPY", src)
		}
	}
	pip := ""
	for _, r := range find(ins, "RUN", -1) {
		if strings.Contains(r.Args, "pip install") {
			pip = r.Args
		}
	}
	for _, want := range []string{`"django~=`, `"gunicorn~=`, "/tmp/sessiongate-django"} {
		if !strings.Contains(pip, want) {
			t.Errorf("pip install lacks %s (Django and gunicorn pinned to a release line): %q", want, pip)
		}
	}
	if u := find(ins, "USER", -1); len(u) == 0 || u[len(u)-1].Args == "root" {
		t.Errorf("Django image runs as root: %v", u)
	}

	// What the start command runs is in the example project.
	env := map[string]string{}
	for _, e := range find(ins, "ENV", -1) {
		for _, kv := range strings.Fields(e.Args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	mod := env["DJANGO_WSGI_MODULE"]
	if mod == "" {
		t.Fatal("no ENV DJANGO_WSGI_MODULE")
	}
	checkPath(t, "DJANGO_WSGI_MODULE", "examples/django/"+strings.ReplaceAll(mod, ".", "/")+".py")
	checkPath(t, "CMD", "examples/django/manage.py")
	cmd := find(ins, "CMD", -1)
	if len(cmd) != 1 {
		t.Fatalf("CMD %v", cmd)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "examples/django")); err == nil && strings.Contains(cmd[0].Args, "demo_user") {
		if m, _ := filepath.Glob(filepath.Join(repoRoot, "examples/django/*/management/commands/demo_user.py")); len(m) == 0 {
			t.Error("CMD runs manage.py demo_user, which the example project does not have")
		}
	}
}
