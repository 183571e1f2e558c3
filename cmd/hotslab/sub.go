// The commands that read and drive a running system through its mounted
// views: mem, slabinfo, top, online, offline, cgroup.

package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func cmdSysfs(name string, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	dir := fset.String("sysfs", "", "the views' mount point (printed by hotslab run)")
	zone := fset.String("zone", "", "online: kernel or movable (default: the block's default zone)")
	n := fset.Int("n", 5, "top: refreshes (0: until interrupted)")
	delay := fset.Duration("d", time.Second, "top: delay between refreshes")
	if err := fset.Parse(flagsFirst(fset, args)); err != nil {
		return usageError{err.Error()}
	}
	if *dir == "" {
		return usageError{name + ": -sysfs DIR is required (the directory hotslab run printed)"}
	}
	if _, err := os.Stat(filepath.Join(*dir, "sys/devices/system/memory/block_size_bytes")); err != nil {
		return fmt.Errorf("%s: %s is not a hotslab views mount: %w", name, *dir, err)
	}
	rest := fset.Args()
	switch name {
	case "mem":
		return showMem(*dir, stdout)
	case "slabinfo":
		b, err := os.ReadFile(filepath.Join(*dir, "proc/slabinfo"))
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case "top":
		for i := 0; *n == 0 || i < *n; i++ {
			if i > 0 {
				time.Sleep(*delay)
			}
			if err := showTop(*dir, stdout); err != nil {
				return err
			}
		}
		return nil
	case "online", "offline":
		if len(rest) != 1 {
			return usageError{name + ": one BLOCK (a number) expected"}
		}
		id, err := strconv.Atoi(strings.TrimPrefix(rest[0], "memory"))
		if err != nil || id < 0 {
			return usageError{fmt.Sprintf("%s: bad block %q", name, rest[0])}
		}
		word := name
		switch {
		case name == "online" && *zone == "kernel":
			word = "online_kernel"
		case name == "online" && *zone == "movable":
			word = "online_movable"
		case *zone != "":
			return usageError{fmt.Sprintf("%s: bad -zone %q (kernel or movable, online only)", name, *zone)}
		}
		path := filepath.Join(*dir, "sys/devices/system/memory", fmt.Sprintf("memory%d", id), "state")
		if err := writeFile(path, word); err != nil {
			return fmt.Errorf("%s memory%d: %w", name, id, err)
		}
		fmt.Fprintf(stdout, "memory%d: %s\n", id, strings.TrimSpace(readFile(path)))
		return nil
	case "cgroup":
		return cgroupCmd(filepath.Join(*dir, "sys/fs/cgroup"), rest, stdout)
	}
	return usageError{"unknown command " + name}
}

// flagsFirst moves the flags (and their values) before the other
// arguments, so that "online 3 -zone movable" parses as "online -zone
// movable 3" (Go's flag package stops at the first non-flag).
func flagsFirst(fset *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fset.Lookup(name); f != nil && i+1 < len(args) {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(flags, rest...)
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return string(b)
}

// writeFile writes data in one write(2), as echo does, returning the
// errno the store gave.
func writeFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(data)
	cerr := f.Close()
	if werr != nil {
		var pe *fs.PathError
		if errors.As(werr, &pe) {
			return pe.Err
		}
		return werr
	}
	return cerr
}

// showMem prints the blocks as lsmem does, from the views.
func showMem(dir string, w io.Writer) error {
	mdir := filepath.Join(dir, "sys/devices/system/memory")
	bs, err := strconv.ParseInt(strings.TrimSpace(readFile(filepath.Join(mdir, "block_size_bytes"))), 16, 64)
	if err != nil {
		return fmt.Errorf("block_size_bytes: %w", err)
	}
	ents, err := os.ReadDir(mdir)
	if err != nil {
		return err
	}
	var ids []int
	for _, e := range ents {
		if id, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "memory")); err == nil && strings.HasPrefix(e.Name(), "memory") {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	fmt.Fprintf(w, "%-18s %8s %-10s %5s %4s %s\n", "RANGE", "SIZE", "STATE", "BLOCK", "NODE", "ZONES")
	var online, offline int64
	for _, id := range ids {
		b := filepath.Join(mdir, fmt.Sprintf("memory%d", id))
		state := strings.TrimSpace(readFile(filepath.Join(b, "state")))
		node := "?"
		if es, err := os.ReadDir(b); err == nil {
			for _, e := range es {
				if strings.HasPrefix(e.Name(), "node") {
					node = strings.TrimPrefix(e.Name(), "node")
				}
			}
		}
		start := int64(id) * bs
		fmt.Fprintf(w, "%#08x-%#08x %7dM %-10s %5d %4s %s\n", start, start+bs-1, bs>>20, state, id, node,
			strings.TrimSpace(readFile(filepath.Join(b, "valid_zones"))))
		if state == "online" {
			online += bs
		} else {
			offline += bs
		}
	}
	fmt.Fprintf(w, "\nMemory block size: %dM\nTotal online memory: %dM\nTotal offline memory: %dM\n", bs>>20, online>>20, offline>>20)
	return nil
}

// showTop prints the caches by memory, as slabtop does.
func showTop(dir string, w io.Writer) error {
	f, err := os.Open(filepath.Join(dir, "proc/slabinfo"))
	if err != nil {
		return err
	}
	defer f.Close()
	type row struct {
		name                      string
		active, total, size, objs int64
	}
	var rows []row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "slabinfo") || strings.HasPrefix(line, "#") {
			continue
		}
		var r row
		var ops, pps int64
		if _, err := fmt.Sscanf(line, "%s %d %d %d %d %d", &r.name, &r.active, &r.total, &r.size, &ops, &pps); err != nil {
			return fmt.Errorf("slabinfo line %q: %w", line, err)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].total*rows[i].size > rows[j].total*rows[j].size })
	var active, total, bytes int64
	for _, r := range rows {
		active += r.active
		total += r.total
		bytes += r.total * r.size
	}
	fmt.Fprintf(w, "\n Active / Total Objects: %d / %d   Total Size: %.1fK   Caches: %d   (%s)\n",
		active, total, float64(bytes)/1024, len(rows), time.Now().Format("15:04:05"))
	fmt.Fprintf(w, "  %8s %8s %4s %8s %-20s\n", "OBJS", "ACTIVE", "USE", "OBJ SIZE", "NAME")
	for i, r := range rows {
		if i == 15 {
			break
		}
		use := 0
		if r.total > 0 {
			use = int(100 * r.active / r.total)
		}
		fmt.Fprintf(w, "  %8d %8d %3d%% %7.2fK %-20s\n", r.total, r.active, use, float64(r.size)/1024, r.name)
	}
	return nil
}

// cgroupCmd lists, creates, removes, shows and sets groups through the
// cgroup tree of the views.
func cgroupCmd(root string, args []string, w io.Writer) error {
	if len(args) == 0 {
		args = []string{"list"}
	}
	path := func(name string) (string, error) {
		if name == "" || strings.Contains(name, "..") {
			return "", usageError{fmt.Sprintf("cgroup: bad group %q", name)}
		}
		return filepath.Join(root, name), nil
	}
	switch args[0] {
	case "list":
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == root {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			fmt.Fprintf(w, "%-24s current %10s max %10s\n", "/"+rel,
				strings.TrimSpace(readFile(filepath.Join(p, "memory.current"))),
				strings.TrimSpace(readFile(filepath.Join(p, "memory.max"))))
			return nil
		})
	case "create", "remove", "show":
		if len(args) != 2 {
			return usageError{"cgroup " + args[0] + ": one NAME expected"}
		}
		p, err := path(args[1])
		if err != nil {
			return err
		}
		switch args[0] {
		case "create":
			return os.Mkdir(p, 0o755)
		case "remove":
			return os.Remove(p)
		}
		for _, f := range []string{"memory.current", "memory.peak", "memory.max", "memory.high", "memory.events", "memory.stat", "memory.numa_stat"} {
			b, err := os.ReadFile(filepath.Join(p, f))
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "== %s\n%s", f, b)
		}
		return nil
	case "set":
		if len(args) != 4 {
			return usageError{"cgroup set: NAME FILE VALUE expected"}
		}
		p, err := path(args[1])
		if err != nil {
			return err
		}
		if !strings.HasPrefix(args[2], "memory.") || strings.Contains(args[2], "/") {
			return usageError{fmt.Sprintf("cgroup set: bad file %q", args[2])}
		}
		if err := writeFile(filepath.Join(p, args[2]), args[3]); err != nil {
			return fmt.Errorf("cgroup set %s %s: %w", args[1], args[2], err)
		}
		return nil
	}
	return usageError{fmt.Sprintf("cgroup: unknown subcommand %q (list, create, remove, show, set)", args[0])}
}
