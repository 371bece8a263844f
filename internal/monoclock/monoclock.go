// Package monoclock reads the time as one int64 of nanoseconds that only
// the monotonic clock moves: for deadlines and intervals kept in atomics
// (a back-off, a warning's last line). time.Now().UnixNano() drops the
// monotonic reading: after the host's wall clock is stepped back (an NTP
// step, a VM restored from a snapshot) a back-off of 10 s lasted the step
// on top, and a warning due once a minute stayed silent as long.
package monoclock

import "time"

// start is the process's first reading, wall and monotonic.
var start = time.Now()

// Now returns the wall clock's Unix nanoseconds at the process's start
// carried on by the monotonic clock since: close to time.Now().UnixNano()
// (so that 0 stays long ago, and a reading is readable as a time), but it
// never jumps when the wall clock is stepped.
func Now() int64 { return start.UnixNano() + int64(time.Since(start)) }
