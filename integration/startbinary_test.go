package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"

	"github.com/sessiongate/sessiongate/integration/harness"
	"github.com/sessiongate/sessiongate/internal/testlog"
)

// TestStartBinaryNotFooledByAnotherHealthz: the harness picks free ports and
// waits for /healthz; when another process took the admin port meanwhile and
// answers /healthz there, the gateway that could not bind must be started
// again on other ports, not taken for healthy (a test then dialled a public
// port nobody listened on).
func TestStartBinaryNotFooledByAnotherHealthz(t *testing.T) {
	t.Parallel()
	bin := buildGateway(t)
	impostor, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(impostor, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(func() { impostor.Close() })

	attempts := 0
	p := startOnFreePorts(t, func() *gwProc {
		attempts++
		admin := impostor.Addr().String()
		if attempts > 1 {
			admin = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
		}
		port := harness.FreePort(t)
		p := &gwProc{stderr: &testlog.Buffer{}, done: make(chan struct{}),
			URL: fmt.Sprintf("http://127.0.0.1:%d", port), Admin: "http://" + admin}
		p.cmd = exec.Command(bin)
		p.cmd.Env = []string{
			fmt.Sprintf("SESSIONGATE_LISTEN=127.0.0.1:%d", port),
			"SESSIONGATE_ADMIN_LISTEN=" + admin,
			"SESSIONGATE_PHP_FPM=127.0.0.1:1",
			"SESSIONGATE_DOCUMENT_ROOT=" + t.TempDir(),
			"SESSIONGATE_SESSIONS=off",
			"PATH=" + os.Getenv("PATH"),
		}
		return p
	})
	if attempts != 2 {
		t.Fatalf("started after %d attempts, want 2 (the first one's admin port was taken)", attempts)
	}
	res, err := http.Get(p.URL + "/missing.txt")
	if err != nil {
		t.Fatalf("the started gateway's public port: %v", err)
	}
	res.Body.Close()
}
