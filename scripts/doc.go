// Package scripts holds the tests of the shell scripts in this directory
// (demo.sh, with ports.sh): they run the real script against a throwaway
// copy of the repository layout, so a running `make demo` is not disturbed.
package scripts
