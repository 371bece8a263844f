package integration

import "testing"

// wpServerCheckPHP decides, the way WordPress does (wp-includes/vars.php
// sets $is_nginx from SERVER_SOFTWARE; got_url_rewrite() trusts it), whether
// the server in front rewrites URLs to the front controller. When it says
// no, Settings > Permalinks offers only /index.php/%postname%/ style
// structures, and a site owner who picks "Post name" gets
// http://host/index.php/hello-world/ where nginx gave /hello-world/.
const wpServerCheckPHP = `<?php
$is_apache = strpos($_SERVER['SERVER_SOFTWARE'], 'Apache') !== false
    || strpos($_SERVER['SERVER_SOFTWARE'], 'LiteSpeed') !== false;
$is_nginx = strpos($_SERVER['SERVER_SOFTWARE'], 'nginx') !== false;
echo ($is_apache || $is_nginx) ? 'rewrites' : 'no rewriting: ' . $_SERVER['SERVER_SOFTWARE'];
`

// TestWordPressSeesURLRewriting: the gateway routes every unmatched URL to
// index.php as nginx's try_files does, so PHP applications that look at
// SERVER_SOFTWARE to know whether pretty URLs work (WordPress's permalink
// settings) must reach the same answer as behind nginx.
func TestWordPressSeesURLRewriting(t *testing.T) {
	t.Parallel()
	g := startGW(t, nil)
	writeTree(t, g.Root, map[string]string{"wp-server-check.php": wpServerCheckPHP})
	res, body := g.get(t, "/wp-server-check.php")
	if res.StatusCode != 200 || body != "rewrites" {
		t.Fatalf("status %d, WordPress's server check says %q; want \"rewrites\"", res.StatusCode, body)
	}
}
