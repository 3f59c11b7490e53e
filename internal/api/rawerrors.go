package api

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
)

// net/http answers some malformed requests itself, before any handler runs
// and with no hook to change it: a request line whose URI does not parse
// (GET /users/%, a bad escape) is a 400, a request line or headers over
// MaxHeaderBytes (a 100 KB path) a 431, a missing Host a 400, an unknown
// Transfer-Encoding a 501. It writes each as one text/plain response
// straight to the connection and closes it (net/http's server.go, "const
// errorHeaders"), on which problemListener's connections rewrite it into a
// problem document. TestWhatNetHTTPAnswersItself sends each kind; a Go
// release that changes the canned shape makes it fail.

// netHTTPErrorHeaders is what follows the status line of net/http's canned
// answers. A handler's response never holds it: net/http writes a
// handler's headers sorted, Connection before Content-Type.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// problemListener wraps the connections it accepts in problemConns.
type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &problemConn{Conn: c}, nil
}

// problemConn rewrites net/http's canned text/plain error answers into
// problem documents. Every other write passes through unchanged (a check
// of the first line of each write, in place).
type problemConn struct{ net.Conn }

func (c *problemConn) Write(p []byte) (int, error) {
	if status, detail, ok := parseNetHTTPError(p); ok {
		if _, err := c.Conn.Write(rawProblem(status, detail)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite keeps net/http's half-close before it closes a connection
// (it looks for the method on the connection it was given).
func (c *problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// parseNetHTTPError recognizes one of net/http's canned error answers,
// "HTTP/1.1 <code> <text>[: <why>]" + netHTTPErrorHeaders + body, and
// returns its status and the reason net/http gave, if any.
func parseNetHTTPError(p []byte) (status int, detail string, ok bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || string(p[:len(proto)]) != proto || p[len(proto)] < '4' || p[len(proto)] > '5' {
		return 0, "", false
	}
	eol := bytes.IndexByte(p, '\r')
	if eol < 0 || !bytes.HasPrefix(p[eol:], []byte(netHTTPErrorHeaders)) {
		return 0, "", false
	}
	line := string(p[len(proto):eol])
	status, err := strconv.Atoi(line[:3])
	if err != nil {
		return 0, "", false
	}
	detail = "the request is malformed"
	if status == http.StatusRequestHeaderFieldsTooLarge {
		detail = "the request line and headers are over " + strconv.Itoa(maxHeaderBytes) + " bytes"
	}
	if body := string(p[eol+len(netHTTPErrorHeaders):]); body != "" && body != line && status != http.StatusRequestHeaderFieldsTooLarge {
		detail = body // "Unsupported transfer encoding"
	}
	if _, why, found := bytes.Cut([]byte(line), []byte(": ")); found {
		detail = string(why) // "missing required Host header"
	}
	return status, detail, true
}

// rawProblem is a whole HTTP/1.1 response carrying a problem document, for
// a request net/http could not parse: it has no instance, as the request's
// path is unknown.
func rawProblem(status int, detail string) []byte {
	body, _ := json.Marshal(problemJSON{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b.WriteString("Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("Content-Type: application/problem+json\r\nX-Content-Type-Options: nosniff\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}
