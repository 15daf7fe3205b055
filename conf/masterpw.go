package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// MasterPasswordFile is the file in data_dir that keeps the master
// password the server makes when [webconference] master_password is empty
// (rpc/node writes it; webconfctl reads it too).
const MasterPasswordFile = "master_password"

// MasterPasswordOff reports whether a master_password value turns the
// master password off ("off", any case): getRoomPassword, listRooms and
// the REST operator routes then refuse everyone, which is what SEMS does
// with an empty master_password.
func MasterPasswordOff(v string) bool { return strings.EqualFold(v, "off") }

// ReadMasterPassword reads a master password file: a regular file that
// only its owner may read or write (0600 or 0400), holding the password
// on its first line. An error wrapping fs.ErrNotExist means there is none.
//
// A file that others may read is refused rather than fixed: the password
// may already have been read, so the operator should know, and choose
// between chmod 600 and deleting the file for a new password.
func ReadMasterPassword(file string) (string, error) {
	fi, err := os.Lstat(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("master password file %s: %w", file, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("master password file %s: not a regular file (%s); remove it, or set [webconference] master_password", file, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("master password file %s: mode %04o lets other users read or change it; "+
			"run chmod 600 %s (or delete it to have a new password made at the next start)", file, perm, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("master password file %s: %w", file, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pw := strings.TrimSpace(line)
	if pw == "" {
		return "", fmt.Errorf("master password file %s: empty; delete it to have a new password made at the next start", file)
	}
	return pw, nil
}
