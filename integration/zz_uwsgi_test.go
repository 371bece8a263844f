package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/integration/harness"
)

func TestZZUwsgi(t *testing.T) {
	root := sessionFixtureRoot(t)
	prepend := writePrepend(t)
	fpm := harness.StartPHPFPM(t, harness.PHPFPMOptions{DocRoot: root, Children: 4})
	red := harness.StartRedis(t)
	project, _ := filepath.Abs("testdata/djangoapi")
	djEnv := []string{"DJANGO_SETTINGS_MODULE=sgapi.settings", "SESSIONGATE_SESSION_KEYS=" + sessionTestKey}
	db, _ := djangoDatabaseOn(t, debianDjango, project, djEnv, []string{"migrate", "--noinput"})
	djEnv = append(djEnv, "DJANGO_DATABASE="+db)
	port := harness.FreePort(t)
	logf := filepath.Join(t.TempDir(), "uwsgi.log")
	cmd := exec.Command("/usr/bin/uwsgi_python3", "--http-socket", "127.0.0.1:"+strconv.Itoa(port), "--chdir", project, "--module", "sgapi.wsgi:application", "--processes", "1", "--threads", "2", "--master", "--logto", logf)
	cmd.Env = append(os.Environ(), djEnv...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(2 * time.Second)
	cfg, err := config.Load([]string{
		"SESSIONGATE_PHP_FPM=" + fpm.Addr,
		"SESSIONGATE_DOCUMENT_ROOT=" + root,
		"SESSIONGATE_SESSION_KEYS=" + sessionTestKey,
		"SESSIONGATE_REDIS_URL=" + red.URL(),
		"SESSIONGATE_PHP_PREPEND=" + prepend,
		"SESSIONGATE_DJANGO_URL=http://127.0.0.1:" + strconv.Itoa(port),
		"SESSIONGATE_DJANGO_PATHS=/accounts/",
	})
	if err != nil {
		t.Fatal(err)
	}
	st := &sessionStack{fpm: fpm, red: red, redis: redis.NewClient(&redis.Options{Addr: red.Addr})}
	st.gws = startGateways(t, cfg, 1)
	gw := st.gws[0]
	for _, kb := range []int{0, 1, 2, 3, 4, 8, 64} {
		ck := st.newSession(t)
		if kb > 0 {
			gw.get(t, fmt.Sprintf("/big.php?ascii=1&kb=%d", kb), ck)
		}
		req, _ := http.NewRequest("GET", gw.URL+"/accounts/api/whoami/", nil)
		req.Header.Set("Cookie", "sessionid="+ck)
		res, err := sessionClient.Do(req)
		if err != nil {
			t.Logf("%d KiB: %v", kb, err)
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Logf("%d KiB: %d %.100q", kb, res.StatusCode, b)
	}
	l, _ := os.ReadFile(logf)
	t.Logf("uwsgi log tail:\n%s", tail(string(l), 1500))
	t.Logf("gw log:\n%s", tail(gw.Logs.String(), 3000))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
