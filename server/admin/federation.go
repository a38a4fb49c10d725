package admin

import (
	"encoding/json"
	"io"
	"net/http"

	"relais/server/fed"
	"relais/server/proto"
)

// ServeFederation makes the /federation endpoints answer with f: peering
// (invite, add), the list of peers and their links, removal.
func (s *Server) ServeFederation(f *fed.Service) { s.fed.Store(f) }

func (s *Server) federationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /federation/invite", s.handle(s.fedInvite))
	mux.HandleFunc("POST /federation/add", s.handle(s.fedAdd))
	mux.HandleFunc("GET /federation/peers", s.handle(s.fedList))
	mux.HandleFunc("POST /federation/remove", s.handle(s.fedRemove))
}

func (s *Server) federation() (*fed.Service, error) {
	f := s.fed.Load()
	if f == nil {
		return nil, proto.Errorf(proto.CodeFederationOff, "federation is off on this node: start it with --federation on (or --federation-listen)")
	}
	return f, nil
}

func (s *Server) fedInvite(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := s.federation()
	if err != nil {
		return nil, err
	}
	t, err := f.Invite(r.Context())
	return map[string]string{"token": t}, err
}

func (s *Server) fedAdd(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := s.federation()
	if err != nil {
		return nil, err
	}
	var b struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 2*fed.MaxTokenLen)).Decode(&b); err != nil || b.Token == "" {
		return nil, proto.Errorf(proto.CodeBadRequest, "expected {\"token\": …}")
	}
	return f.Add(r.Context(), b.Token)
}

func (s *Server) fedList(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := s.federation()
	if err != nil {
		return nil, err
	}
	return f.List()
}

func (s *Server) fedRemove(w http.ResponseWriter, r *http.Request) (any, error) {
	f, err := s.federation()
	if err != nil {
		return nil, err
	}
	var b struct {
		ID fed.AdminID `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&b); err != nil || !b.ID.Valid() {
		return nil, proto.Errorf(proto.CodeBadRequest, "expected {\"id\": an administration id}")
	}
	return map[string]string{"status": "ok"}, f.Remove(r.Context(), b.ID)
}
