package bench

import (
	"encoding/binary"
	"time"
)

// copyBuf builds the body of a COPY … FROM STDIN (FORMAT binary) in one
// reused byte slice: no per-row or per-value allocation once it has grown.
// It is what the minimum baseline (a2) sends instead of pgx.CopyFrom, which
// also prepares a statement per COPY to learn the column types and encodes
// each value through reflection. Not goroutine-safe.
type copyBuf struct{ b []byte }

// pgEpochMicros is 2000-01-01T00:00:00Z in Unix microseconds: binary
// timestamptz is microseconds since then.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// reset starts a new COPY body: the signature, no flags, no header extension.
func (c *copyBuf) reset() {
	c.b = append(c.b[:0], "PGCOPY\n\xff\r\n\x00"...)
	c.b = binary.BigEndian.AppendUint32(c.b, 0)
	c.b = binary.BigEndian.AppendUint32(c.b, 0)
}

// row starts a tuple of n fields.
func (c *copyBuf) row(n int) { c.b = binary.BigEndian.AppendUint16(c.b, uint16(n)) }

func (c *copyBuf) text(s string) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

// textOrNull writes s, or NULL when s is nil.
func (c *copyBuf) textOrNull(s *string) {
	if s == nil {
		c.b = binary.BigEndian.AppendUint32(c.b, 0xFFFFFFFF)
		return
	}
	c.text(*s)
}

func (c *copyBuf) int4(v int32) {
	c.b = binary.BigEndian.AppendUint32(c.b, 4)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(v))
}

func (c *copyBuf) int8(v int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(v))
}

func (c *copyBuf) timestamptz(t time.Time) {
	c.int8(t.UnixMicro() - pgEpochMicros)
}

// finish writes the trailer; the body is then c.b.
func (c *copyBuf) finish() { c.b = binary.BigEndian.AppendUint16(c.b, 0xFFFF) }
