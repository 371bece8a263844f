//go:build race

package main

// raceEnabled: the race detector drops a share of what goes back into a
// sync.Pool, so pooled buffers are allocated again and allocation counts
// say nothing.
const raceEnabled = true
