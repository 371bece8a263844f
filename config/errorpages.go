package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrorPages parses SESSIONGATE_ERROR_PAGES (after Load has checked it):
// the URL of the page for each status code that has one.
func (c *Config) ErrorPages() map[int]string {
	out := map[int]string{}
	for _, e := range c.ErrorPageSpecs {
		codes, url, err := parseErrorPage(e)
		if err != nil {
			continue
		}
		for _, code := range codes {
			out[code] = url
		}
	}
	return out
}

// GatewayErrorCodes are the error statuses the gateway answers with
// itself (401 for SESSIONGATE_BASIC_AUTH), and so those SESSIONGATE_ERROR_PAGES may give a page. Errors
// that Go's file server answers for ranges and preconditions (412, 416)
// are not among them.
var GatewayErrorCodes = []int{400, 401, 403, 404, 405, 408, 413, 414, 421, 429, 431, 500, 502, 503, 504}

func codeList(codes []int) string {
	var b strings.Builder
	for i, c := range codes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(c))
	}
	return b.String()
}

// parseErrorPage reads "CODE [CODE...]=URL", nginx's error_page line with
// an = in place of the last space.
func parseErrorPage(e string) ([]int, string, error) {
	list, url, ok := strings.Cut(e, "=")
	url = strings.TrimSpace(url)
	fields := strings.Fields(list)
	if !ok || len(fields) == 0 || url == "" {
		return nil, "", fmt.Errorf("%q: each entry is CODES=URL, e.g. 502 503 504=/50x.html", e)
	}
	var codes []int
	for _, f := range fields {
		code, err := strconv.Atoi(f)
		switch {
		case err != nil || len(f) != 3 || f[0] < '1' || code < 400 || code > 599:
			return nil, "", fmt.Errorf("%q: %q is not an error status code (400-599)", e, f)
		case code == 499:
			return nil, "", fmt.Errorf("%q: 499 is logged when the client left; nothing is sent to it", e)
		case !slices.Contains(GatewayErrorCodes, code):
			return nil, "", fmt.Errorf("%q: the gateway itself answers only %s, so a page for %d would never be sent (PHP's and Django's own error responses pass unchanged)", e, codeList(GatewayErrorCodes), code)
		}
		codes = append(codes, code)
	}
	switch {
	case strings.HasPrefix(url, "@"):
		return nil, "", fmt.Errorf("%q: named locations are nginx's; give the URL of a file, e.g. /50x.html", e)
	case strings.HasPrefix(url, "http://"), strings.HasPrefix(url, "https://"):
		return nil, "", fmt.Errorf("%q: the page is a file of the site, not a redirect: give its URL path, e.g. /50x.html", e)
	case !urlPrefixOK(url) || strings.HasSuffix(url, "/"):
		return nil, "", fmt.Errorf("%q: the page must be a file's URL path starting with / (no query, %%-escapes, // or .. segments), e.g. /50x.html", e)
	}
	for seg := range strings.SplitSeq(url, "/") {
		switch {
		case strings.HasSuffix(strings.ToLower(seg), ".php"):
			return nil, "", fmt.Errorf("%q: the page is sent as a file, never run: a PHP script cannot be one (the app's own error pages reach clients anyway)", e)
		case strings.HasPrefix(seg, "."):
			return nil, "", fmt.Errorf("%q: dotfiles are never sent", e)
		}
	}
	return codes, url, nil
}

func (c *Config) checkErrorPages(check func(name string, ok bool, format string, args ...any)) {
	const name = "SESSIONGATE_ERROR_PAGES"
	seen := map[int]bool{}
	for _, e := range c.ErrorPageSpecs {
		codes, _, err := parseErrorPage(e)
		if err != nil {
			check(name, false, "%s", err.Error())
			continue
		}
		for _, code := range codes {
			check(name, !seen[code], "%d is listed twice", code)
			seen[code] = true
		}
	}
}
