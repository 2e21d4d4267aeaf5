package server

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route (OpenAPI 3.1); a test holds it to the
// route table.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ *principal) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPIDoc)
}
