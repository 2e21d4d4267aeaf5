package rules

import (
	"unsafe"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// derived values computed at most once per event into reusable buffers.
const (
	dProcArgs = iota
	dProcCmdline
	dParentArgs
	dParentCmdline
	dFDName
	dFlags
	dCapEff
	dEnv
	dArgs
	dCwd
	dTime
	dMounts
	dMode
	dCount
)

// ctx is the per-evaluation state. Match takes one from a pool, so the
// hot path reuses its buffers and allocates nothing.
type ctx struct {
	e       *event.Event
	num     uint64 // evt.num; 0 outside Match
	done    uint32 // bit i set: derived[i] computed
	miss    uint32 // bit i set: derived[i] has no value
	derived [dCount]string
	dbuf    [dCount][]byte
	// scratch buffers for transformers, one per compiled transformer
	scratch [][]byte
}

func (c *ctx) reset(e *event.Event, num uint64, nscratch int) {
	c.e = e
	c.num = num
	c.done, c.miss = 0, 0
	if len(c.scratch) < nscratch {
		c.scratch = append(c.scratch, make([][]byte, nscratch-len(c.scratch))...)
	}
}

// derive returns derived value i, computing it with fill on first use.
// fill appends to the given buffer and returns it and whether there is a
// value.
func (c *ctx) derive(i int, fill func(c *ctx, b []byte) ([]byte, bool)) (string, bool) {
	bit := uint32(1) << i
	if c.done&bit != 0 {
		return c.derived[i], c.miss&bit == 0
	}
	b, ok := fill(c, c.dbuf[i][:0])
	c.dbuf[i] = b
	c.done |= bit
	if !ok {
		c.miss |= bit
		c.derived[i] = ""
		return "", false
	}
	c.derived[i] = bstr(b)
	return c.derived[i], true
}

// bstr views b as a string without copying; b must not change while the
// string is in use (buffers are only rewritten for the next event).
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
