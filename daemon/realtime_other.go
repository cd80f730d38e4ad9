//go:build !linux

package daemon

import "errors"

// RealtimePriority is the SCHED_RR priority SetRealtime would use.
const RealtimePriority = 10

// SetRealtime is supported on Linux only.
func SetRealtime() error { return errors.New("real-time scheduling is supported on Linux only") }
