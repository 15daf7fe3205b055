package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"webconf/sipapp/meeting"
)

// NodeUUIDFile is the file in data_dir that keeps the node's UUID, the
// origin_uuid of its events: made at the first start, kept across
// restarts (each node of a cluster has its own data_dir).
const NodeUUIDFile = "node_uuid"

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// nodeUUID reads data_dir/node_uuid, or makes it (written to a temporary
// file, synced, then linked into place, so that two starts agree).
func nodeUUID(dataDir string) (string, error) {
	file := filepath.Join(dataDir, NodeUUIDFile)
	if id, err := readNodeUUID(file); !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("node uuid file %s: %w", file, err)
	}
	tmp, err := os.CreateTemp(dataDir, "."+NodeUUIDFile+".*")
	if err != nil {
		return "", fmt.Errorf("node uuid file %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(meeting.NewUUID() + "\n")
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.Link(tmp.Name(), file); errors.Is(err, fs.ErrExist) {
			err = nil // another start made it first: take that one
		}
	}
	if err != nil {
		return "", fmt.Errorf("node uuid file %s: %w", file, err)
	}
	return readNodeUUID(file)
}

func readNodeUUID(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("node uuid file %s: %w", file, err)
	}
	id := strings.TrimSpace(string(b))
	if !uuidRe.MatchString(id) {
		return "", fmt.Errorf("node uuid file %s: %q is not a UUID; remove the file to make a new one", file, id)
	}
	return id, nil
}
