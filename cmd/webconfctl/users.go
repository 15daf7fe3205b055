package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"webconf/conf"
)

// masterPassword is the password given, else the one the server keeps
// in its data_dir.
func (x *cli) masterPassword() (string, error) {
	if x.master != "" {
		return x.master, nil
	}
	file := filepath.Join(x.dataDir, conf.MasterPasswordFile)
	pw, err := conf.ReadMasterPassword(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no master password: give -master or WEBCONF_MASTER_PASSWORD, "+
			"or -data-dir DIR with the server's data_dir on its machine (there is no %s)", file)
	}
	return pw, err
}

// user runs the user commands over the REST API.
func (x *cli) user(args []string) error {
	if len(args) == 0 {
		return usageError("user add|list|delete")
	}
	switch args[0] {
	case "add":
		fs := flag.NewFlagSet("user add", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		caps := fs.String("capability", "", "comma-separated: meetings, sip")
		email := fs.String("email", "", "the user's email address")
		line := fs.String("line", "", "the user's phone, a sip: or sips: URI (the calls API rings it)")
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil || len(pos) != 1 {
			return usageError("user add NAME [--capability meetings,sip] [--email ADDRESS] [--line sip:URI]")
		}
		in := map[string]any{"username": pos[0]}
		if *caps != "" {
			var list []string
			for _, c := range strings.Split(*caps, ",") {
				if c = strings.TrimSpace(c); c != "" {
					list = append(list, c)
				}
			}
			in["capabilities"] = list
		}
		if *email != "" {
			in["email"] = *email
		}
		if *line != "" {
			in["line"] = *line
		}
		var u userReply
		if err := x.rest("POST", "/users", in, &u); err != nil {
			return err
		}
		if x.asJSON {
			return x.print(u, nil)
		}
		// The token alone on stdout, for TOKEN=$(webconfctl user add ...).
		fmt.Fprintf(x.errOut, "user %s made (uuid %s, capabilities %s); its token, shown only this once:\n",
			u.Username, u.UUID, strings.Join(u.Capabilities, ","))
		fmt.Fprintln(x.out, u.Token)
		return nil
	case "list":
		if len(args) != 1 {
			return usageError("user list")
		}
		users, err := x.users()
		if err != nil {
			return err
		}
		return x.print(users, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tUUID\tROLE\tCAPABILITIES\tCREATED\tLAST LOGIN")
			for _, u := range users {
				last := "-"
				if u.LastLogin != nil {
					last = u.LastLogin.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Username, u.UUID, u.Role,
					strings.Join(u.Capabilities, ","), u.Created.Format(time.RFC3339), last)
			}
			tw.Flush()
		})
	case "delete":
		if len(args) != 2 {
			return usageError("user delete NAME")
		}
		users, err := x.users()
		if err != nil {
			return err
		}
		for _, u := range users {
			if u.Username == args[1] {
				if err := x.rest("DELETE", "/users/"+url.PathEscape(u.UUID), nil, nil); err != nil {
					return err
				}
				return x.print(map[string]string{"result": "OK"}, func(w io.Writer) { fmt.Fprintln(w, "OK") })
			}
		}
		return fmt.Errorf("no user %q", args[1])
	}
	return usageError(fmt.Sprintf("unknown user command %q", args[0]))
}

// userReply is a user as the REST API answers it.
type userReply struct {
	UUID         string     `json:"uuid"`
	Username     string     `json:"username"`
	Email        string     `json:"email,omitempty"`
	Role         string     `json:"role"`
	Capabilities []string   `json:"capabilities"`
	Line         string     `json:"line,omitempty"`
	Created      time.Time  `json:"created"`
	LastLogin    *time.Time `json:"last_login"`
	Token        string     `json:"token,omitempty"`
}

func (x *cli) users() ([]userReply, error) {
	var l struct {
		Items []userReply `json:"items"`
	}
	if err := x.rest("GET", "/users", nil, &l); err != nil {
		return nil, err
	}
	if l.Items == nil {
		l.Items = []userReply{}
	}
	return l.Items, nil
}

// rest sends an operator request (HTTP Basic admin:<master password>) to
// path under /api/v1/ and decodes a 2xx answer's JSON into out.
func (x *cli) rest(method, path string, in, out any) error {
	pw, err := x.masterPassword()
	if err != nil {
		return err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := x.api + "/api/v1" + path
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return fmt.Errorf("REST API URL %q: %w", x.api, err)
	}
	req.SetBasicAuth("admin", pw)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := x.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the REST API at %s (the server's [http] listen; -api URL): %w", x.api, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if resp.StatusCode/100 == 2 {
		if out == nil || len(b) == 0 {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: unexpected answer: %w", method, u, err)
		}
		return nil
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("the server at %s refused the master password (wrong, or master_password=off there)", x.api)
	case http.StatusTooManyRequests:
		return errors.New("the server refuses this address for now, after too many wrong passwords ([limits] ban_time)")
	}
	if e.Error.Message != "" {
		return fmt.Errorf("the server refused it: %s (%d %s)", e.Error.Message, resp.StatusCode, e.Error.Code)
	}
	return fmt.Errorf("%s %s: %s", method, u, resp.Status)
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (user add alice --capability meetings), and
// returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
