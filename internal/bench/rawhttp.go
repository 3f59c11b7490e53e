package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"time"
)

// rawConn is the load generator's HTTP/1.1 client: one keep-alive
// connection, one request at a time, GET only, written and read in the
// caller's goroutine. It does what the load tests need and no more: it
// sends the request line, Host and the bearer token, reads the status line
// and the headers, and discards a body of Content-Length bytes (every API
// answer has one; a response without it is an error). net/http's client
// does the same work with two goroutines per connection and a hand-off
// to each per request, which on a 2-core machine shared with the server
// costs the server a fifth of its throughput (BENCHMARKS.md). Not safe for
// concurrent use: each load worker has its own.
type rawConn struct {
	addr, host, token string
	conn              net.Conn
	br                *bufio.Reader
	bw                *bufio.Writer
}

func newRawConn(base, token string) (*rawConn, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("load target %q: want http://host:port", base)
	}
	return &rawConn{addr: u.Host, host: u.Host, token: token}, nil
}

var errNoLength = errors.New("the response has no Content-Length")

// get GETs path and returns the response's status; the body is read and
// discarded. On an error the connection is closed and the next get dials
// again.
func (c *rawConn) get(ctx context.Context, path string) (status int, err error) {
	if c.conn == nil {
		var d net.Dialer
		if c.conn, err = d.DialContext(ctx, "tcp", c.addr); err != nil {
			c.conn = nil
			return 0, err
		}
		c.br, c.bw = bufio.NewReaderSize(c.conn, 16<<10), bufio.NewWriterSize(c.conn, 4<<10)
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if dl, ok := ctx.Deadline(); ok {
		// A load test ends at its deadline: a request in flight then must
		// not hold its worker.
		_ = c.conn.SetDeadline(dl.Add(10 * time.Second))
	}
	c.bw.WriteString("GET ")
	c.bw.WriteString(path)
	c.bw.WriteString(" HTTP/1.1\r\nHost: ")
	c.bw.WriteString(c.host)
	if c.token != "" {
		c.bw.WriteString("\r\nAuthorization: Bearer ")
		c.bw.WriteString(c.token)
	}
	c.bw.WriteString("\r\n\r\n")
	if err := c.bw.Flush(); err != nil {
		return 0, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %.40q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, fmt.Errorf("bad status line %.40q", line)
	}
	length, closing := -1, false
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("bad header line %.40q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
			closing = true
		}
	}
	if length < 0 {
		return 0, errNoLength
	}
	if _, err := c.br.Discard(length); err != nil {
		return 0, err
	}
	if closing {
		c.close()
	}
	return status, nil
}

func (c *rawConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// httpLoad GETs base+path(r), each request carrying token as its bearer
// token, each of conns workers on a keep-alive connection of its own
// (rawConn), kept from one slice to the next. A status other than 200
// counts as an error. Call done when the test is over.
func httpLoad(base, token string, path func(*rand.Rand) string, conns int) (do loadFunc, done func(), err error) {
	cs := make([]*rawConn, conns)
	for i := range cs {
		if cs[i], err = newRawConn(base, token); err != nil {
			return nil, nil, err
		}
	}
	do = func(ctx context.Context, w int, r *rand.Rand) error {
		status, err := cs[w].get(ctx, path(r))
		if err == nil && status != 200 {
			err = fmt.Errorf("status %d", status)
		}
		return err
	}
	return do, func() {
		for _, c := range cs {
			c.close()
		}
	}, nil
}

// loadHTTP is an httpLoad test run alone for d.
func loadHTTP(ctx context.Context, base, token string, path func(*rand.Rand) string, conns int, d time.Duration) (LoadResult, error) {
	do, done, err := httpLoad(base, token, path, conns)
	if err != nil {
		return LoadResult{}, err
	}
	defer done()
	return load(ctx, conns, d, do)
}
