package redisstore

import "testing"

func TestFlaggedFailed(t *testing.T) {
	nodes := "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-a slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected\n" +
		"67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master,fail - 0 1426238316232 2 disconnected 5461-10922\n" +
		"292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master,fail? - 0 1426238318243 3 connected 10923-16383\n" +
		"392f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 10.0.0.5:30005@31005,redis-5.example master,fail - 0 1426238318243 3 connected\n" +
		"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460\n"
	for addr, want := range map[string]bool{
		"127.0.0.1:30002":       true,  // fail: the cluster agreed
		"127.0.0.1:30003":       false, // fail?: one node's suspicion
		"127.0.0.1:30001":       false,
		"127.0.0.1:30004":       false,
		"127.0.0.1:3000":        false,
		"redis-5.example:30005": true, // known by its announced hostname
		"10.0.0.5:30005":        true,
	} {
		if got := flaggedFailed(nodes, addr); got != want {
			t.Errorf("flaggedFailed(%s) = %v, want %v", addr, got, want)
		}
	}
}
