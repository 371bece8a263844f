package config

import "testing"

// A directory entry covers its name without the slash for UnderLocation
// (its redirect, its index), never for UnderPrefixLocation (nginx's
// location /dir/, and the route of its own Symfony and Django give it).
func TestUnderLocationAndPrefix(t *testing.T) {
	for _, tc := range []struct {
		path, entry   string
		under, prefix bool
	}{
		{"/webhooks/", "/webhooks/", true, true},
		{"/webhooks/x", "/webhooks/", true, true},
		{"/webhooks", "/webhooks/", true, false},
		{"/webhooksx", "/webhooks/", false, false},
		{"/web", "/webhooks/", false, false},
		{"/login.php", "/login.php", true, true},
		{"/login.php/x", "/login.php", false, false},
		{"/anything", "/", true, true},
		{"/", "/", true, true},
	} {
		if got := UnderLocation(tc.path, tc.entry); got != tc.under {
			t.Errorf("UnderLocation(%q, %q) = %v", tc.path, tc.entry, got)
		}
		if got := UnderPrefixLocation(tc.path, tc.entry); got != tc.prefix {
			t.Errorf("UnderPrefixLocation(%q, %q) = %v", tc.path, tc.entry, got)
		}
	}
}
