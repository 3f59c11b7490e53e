package api

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"time"

	"github.com/streamjoin/streamjoin/internal/store"
)

// A cursor is opaque to clients: base64url (unpadded) of a version byte, a
// kind byte (which listing it belongs to) and the last key of the page it
// ends. It depends on nothing but that key, so it stays valid across
// restarts and replicas, and a page resumed from it starts right after that
// key whatever was inserted or deleted meanwhile (keyset pagination).
const cursorVersion = 1

// Cursor kinds.
const (
	cursorUsersByOrg byte = 'u' // payload: the last user id
	cursorOrgs       byte = 'o' // payload: the last organization name
	cursorHistory    byte = 'h' // payload: store.HistoryKey, see encodeHistoryCursor
)

var errBadCursor = &problem{status: http.StatusBadRequest, detail: "cursor is not one this API issued for this listing"}

func encodeCursor(kind byte, payload []byte) string {
	b := append([]byte{cursorVersion, kind}, payload...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the payload of a cursor of kind; "" decodes to nil
// (the first page).
func decodeCursor(kind byte, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != cursorVersion || b[1] != kind {
		return nil, errBadCursor
	}
	return b[2:], nil
}

// decodeKeyCursor decodes a cursor whose payload is a non-empty string key.
func decodeKeyCursor(kind byte, s string) (string, error) {
	p, err := decodeCursor(kind, s)
	if err != nil {
		return "", err
	}
	if s != "" && len(p) == 0 {
		return "", errBadCursor
	}
	return string(p), nil
}

// historyKeyBytes is the fixed part of a history cursor: received_at in
// Unix microseconds (PostgreSQL's precision), precedence, partition, offset.
const historyKeyBytes = 8 + 4 + 4 + 8

func encodeHistoryCursor(k store.HistoryKey) string {
	b := make([]byte, historyKeyBytes, historyKeyBytes+len(k.Topic))
	binary.BigEndian.PutUint64(b[0:], uint64(k.ReceivedAt.UnixMicro()))
	binary.BigEndian.PutUint32(b[8:], uint32(k.Precedence))
	binary.BigEndian.PutUint32(b[12:], uint32(k.Partition))
	binary.BigEndian.PutUint64(b[16:], uint64(k.Offset))
	return encodeCursor(cursorHistory, append(b, k.Topic...))
}

// decodeHistoryCursor returns nil for "" (the first page).
func decodeHistoryCursor(s string) (*store.HistoryKey, error) {
	p, err := decodeCursor(cursorHistory, s)
	if err != nil || p == nil {
		return nil, err
	}
	if len(p) < historyKeyBytes {
		return nil, errBadCursor
	}
	return &store.HistoryKey{
		ReceivedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(p[0:]))).UTC(),
		Precedence: int32(binary.BigEndian.Uint32(p[8:])),
		Partition:  int32(binary.BigEndian.Uint32(p[12:])),
		Offset:     int64(binary.BigEndian.Uint64(p[16:])),
		Topic:      string(p[historyKeyBytes:]),
	}, nil
}
