package sim

import (
	"fmt"
	"io"
	"time"
)

// tracer writes the readable event trace: one line per event, with the
// virtual time and the process it concerns.
type tracer struct {
	w        io.Writer
	describe func([]byte) string
}

func (t tracer) on() bool { return t.w != nil }

func (t tracer) printf(at time.Duration, who, format string, args ...any) {
	if t.w == nil {
		return
	}
	if who == "" {
		who = "--"
	}
	fmt.Fprintf(t.w, "%12.6fs %-7s %s\n", at.Seconds(), who, fmt.Sprintf(format, args...))
}

// frame names a frame in the trace: by Options.DescribeFrame, or by size.
func (t tracer) frame(frame []byte) string {
	if t.describe != nil {
		return t.describe(frame)
	}
	return fmt.Sprintf("frame(%dB)", len(frame))
}
