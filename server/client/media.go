package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"relais/server/proto"
)

// Attachments over HTTP (/api/v1/media/): resumable uploads and
// downloads. See PROTOCOL.md, "Files".

// BeginUpload starts an upload.
func (c *Client) BeginUpload(ctx context.Context, req proto.UploadRequest) (proto.UploadState, error) {
	var out proto.UploadState
	err := c.Do(ctx, "POST", "/api/v1/media/uploads", req, &out)
	return out, err
}

// UploadStatus returns where an upload stands, to resume it.
func (c *Client) UploadStatus(ctx context.Context, id string) (proto.UploadState, error) {
	var out proto.UploadState
	err := c.Do(ctx, "GET", "/api/v1/media/uploads/"+url.PathEscape(id), nil, &out)
	return out, err
}

// PutChunk sends a chunk at offset; length is its size, or -1 to stream
// it without a Content-Length. It returns the upload's offset as the node
// reports it (the Upload-Offset header), also with an error such as
// offset_mismatch.
func (c *Client) PutChunk(ctx context.Context, id string, offset int64, chunk io.Reader, length int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "PUT", c.base+"/api/v1/media/uploads/"+url.PathEscape(id)+"?offset="+strconv.FormatInt(offset, 10), chunk)
	if err != nil {
		return 0, err
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := c.raw(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	at, _ := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err := errorOf(resp); err != nil {
		return at, err
	}
	var out proto.UploadState
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return at, err
	}
	return out.Offset, nil
}

// FinishUpload completes an upload and returns the file.
func (c *Client) FinishUpload(ctx context.Context, id string) (proto.File, error) {
	var out struct {
		File proto.File `json:"file"`
	}
	err := c.Do(ctx, "POST", "/api/v1/media/uploads/"+url.PathEscape(id)+"/finish", nil, &out)
	return out.File, err
}

// AbortUpload deletes an unfinished upload.
func (c *Client) AbortUpload(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", "/api/v1/media/uploads/"+url.PathEscape(id), nil, nil)
}

// UploadFile uploads content in chunks of the size the node suggests (or
// chunk bytes when positive), resuming from the node's offset after a
// refused chunk, and finishes the upload.
func (c *Client) UploadFile(ctx context.Context, req proto.UploadRequest, content []byte, chunk int) (proto.File, error) {
	req.Size = int64(len(content))
	up, err := c.BeginUpload(ctx, req)
	if err != nil {
		return proto.File{}, err
	}
	if chunk <= 0 {
		chunk = max(up.ChunkSize, 1)
	}
	offset := int64(0)
	for tries := 0; offset < int64(len(content)); {
		end := min(offset+int64(chunk), int64(len(content)))
		at, err := c.PutChunk(ctx, up.ID, offset, bytes.NewReader(content[offset:end]), end-offset)
		if err != nil {
			if tries++; tries > 5 || at < 0 || at > int64(len(content)) {
				return proto.File{}, err
			}
			offset = at
			continue
		}
		offset = at
	}
	return c.FinishUpload(ctx, up.ID)
}

// FileState returns a file's metadata and antivirus state.
func (c *Client) FileState(ctx context.Context, fileID string) (proto.FileInfo, error) {
	var out proto.FileInfo
	err := c.Do(ctx, "GET", "/api/v1/media/files/"+url.PathEscape(fileID)+"/state", nil, &out)
	return out, err
}

// ScannerKey returns the node's scanner key.
func (c *Client) ScannerKey(ctx context.Context) (proto.ScannerKey, error) {
	var out proto.ScannerKey
	err := c.Do(ctx, "GET", "/api/v1/media/scanner-key", nil, &out)
	return out, err
}

// Download fetches a file (or, with thumb, its thumbnail); header adds
// request headers such as Range. The caller closes the body of a
// successful response; a refusal is returned as an *Error.
func (c *Client) Download(ctx context.Context, fileID string, thumb bool, header http.Header) (*http.Response, error) {
	path := "/api/v1/media/files/" + url.PathEscape(fileID)
	if thumb {
		path += "/thumb"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.raw(req)
	if err != nil {
		return nil, err
	}
	if err := errorOf(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// raw sends a request with the client's session.
func (c *Client) raw(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

// errorOf returns the *Error of a refused response (reading its body), or
// nil.
func errorOf(resp *http.Response) error {
	if resp.StatusCode < 300 {
		return nil
	}
	var e struct {
		Error Error `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
	e.Error.Status = resp.StatusCode
	if e.Error.Code == "" {
		e.Error.Code = fmt.Sprintf("http_%d", resp.StatusCode)
	}
	return &e.Error
}
