package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// writeCached writes v as a 200 JSON response with a strong ETag, a hash
// of the body, or a bodiless 304 when the request's If-None-Match names
// that tag (or is "*"). The body is built whole first, to be hashed.
func (s *Server) writeCached(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeTagged(w, r, append(body, '\n'))
}

// writeAppended is writeCached for a body that appendBody appends to a
// pooled buffer (the hot listings' encoders in encode.go, which skip
// encoding/json's reflection).
func (s *Server) writeAppended(w http.ResponseWriter, r *http.Request, appendBody func([]byte) ([]byte, error)) {
	bp := bufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			bufs.Put(bp)
		}
	}()
	body, err := appendBody((*bp)[:0])
	*bp = body[:0]
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeTagged(w, r, body)
}

// writeTagged writes body, a whole JSON document, as writeCached does.
func (s *Server) writeTagged(w http.ResponseWriter, r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	tag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("ETag", tag)
	if etagMatches(r.Header.Get("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// etagMatches is If-None-Match's weak comparison (RFC 9110 13.1.2): a
// W/ prefix on either side is ignored.
func etagMatches(header, tag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}
