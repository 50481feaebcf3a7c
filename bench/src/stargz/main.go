// A small stargz snapshotter daemon for the containerd bench: the stargz
// snapshotter library (Debian's golang-github-containerd-stargz-snapshotter-dev)
// served over a unix socket as containerd's proxy snapshotter plugin.
//
// Modelled on upstream's cmd/containerd-stargz-grpc (v0.12.0, which Debian does
// not ship), less what the bench has no use for: IPFS, the bolt metadata store,
// the keychains (anonymous pulls only), the metrics and debug listeners and
// systemd notification. Layers are found from the labels that
// `ctr-remote image rpull` sets (upstream also reads the CRI plugin's labels).
//
// The library's own wiring (package service) cannot be used: its resolver
// imports k8s.io/cri-api, which Debian 12 does not package. What the daemon
// needs of it is repeated here: the config file's schema (fs options at the
// top level, registries under [resolver], as upstream's config.toml) and the
// registry hosts built from it, where a mirror with insecure = true is reached
// over plain HTTP.
//
// Unlike upstream, SIGTERM cleans up as SIGINT does (the snapshotter is closed
// and its FUSE mounts detached): the bench stops it for good, never to restart
// it on the same root.
//
// Build (GOPATH mode, Debian's Go 1.19 and packages only):
//
//	GO111MODULE=off GOPATH=<tmp>:/usr/share/gocode go build -o containerd-stargz-grpc .

package main

import (
	"context"
	"flag"
	"fmt"
	golog "log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/reference"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/snapshots/overlay/overlayutils"
	stargzfs "github.com/containerd/stargz-snapshotter/fs"
	fsconfig "github.com/containerd/stargz-snapshotter/fs/config"
	"github.com/containerd/stargz-snapshotter/fs/layer"
	"github.com/containerd/stargz-snapshotter/fs/source"
	memorymetadata "github.com/containerd/stargz-snapshotter/metadata/memory"
	snbase "github.com/containerd/stargz-snapshotter/snapshot"
	rhttp "github.com/hashicorp/go-retryablehttp"
	"github.com/pelletier/go-toml"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
)

var (
	address    = flag.String("address", "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock", "address for the snapshotter's GRPC server")
	configPath = flag.String("config", "", "path to the configuration file (none: defaults)")
	logLevel   = flag.String("log-level", logrus.InfoLevel.String(), "set the logging level [trace, debug, info, warn, error, fatal, panic]")
	rootDir    = flag.String("root", "/var/lib/containerd-stargz-grpc", "path to the root directory for this snapshotter")
)

// snapshotterConfig is the part of upstream's config.toml this daemon reads.
type snapshotterConfig struct {
	fsconfig.Config
	// ResolverConfig is config for resolving registries.
	ResolverConfig resolverConfig `toml:"resolver"`
}

// resolverConfig, hostConfig and mirrorConfig are upstream's service/resolver.Config.
type resolverConfig struct {
	Host map[string]hostConfig `toml:"host"`
}

type hostConfig struct {
	Mirrors []mirrorConfig `toml:"mirrors"`
}

type mirrorConfig struct {
	// Host is the hostname of the host.
	Host string `toml:"host"`
	// Insecure is true means use http scheme instead of https.
	Insecure bool `toml:"insecure"`
	// RequestTimeoutSec is timeout seconds of each request to the registry:
	// 0 is the default (30 s), < 0 none.
	RequestTimeoutSec int `toml:"request_timeout_sec"`
}

const defaultRequestTimeoutSec = 30

// registryHosts is upstream's resolver.RegistryHostsFromConfig without credentials:
// the host's mirrors in order, then the host itself over HTTPS (HTTP for localhost).
func registryHosts(cfg resolverConfig) source.RegistryHosts {
	return func(ref reference.Spec) (hosts []docker.RegistryHost, _ error) {
		host := ref.Hostname()
		for _, h := range append(cfg.Host[host].Mirrors, mirrorConfig{Host: host}) {
			client := rhttp.NewClient()
			client.Logger = nil // disable logging every request
			tr := client.StandardClient()
			if h.RequestTimeoutSec >= 0 {
				if h.RequestTimeoutSec == 0 {
					tr.Timeout = defaultRequestTimeoutSec * time.Second
				} else {
					tr.Timeout = time.Duration(h.RequestTimeoutSec) * time.Second
				}
			}
			config := docker.RegistryHost{
				Client:       tr,
				Host:         h.Host,
				Scheme:       "https",
				Path:         "/v2",
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
				Authorizer:   docker.NewDockerAuthorizer(docker.WithAuthClient(tr)),
			}
			if localhost, _ := docker.MatchLocalhost(config.Host); localhost || h.Insecure {
				config.Scheme = "http"
			}
			if config.Host == "docker.io" {
				config.Host = "registry-1.docker.io"
			}
			hosts = append(hosts, config)
		}
		return
	}
}

func main() {
	flag.Parse()
	lvl, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		log.L.WithError(err).Fatal("failed to prepare logger")
	}
	logrus.SetLevel(lvl)
	logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: log.RFC3339NanoFixed})
	ctx := log.WithLogger(context.Background(), log.L)
	// go-fuse logs through the standard library's logger: into the debug log
	golog.SetOutput(log.G(ctx).WriterLevel(logrus.DebugLevel))

	var config snapshotterConfig
	if *configPath != "" {
		tree, err := toml.LoadFile(*configPath)
		if err != nil {
			log.G(ctx).WithError(err).Fatalf("failed to load config file %q", *configPath)
		}
		if err := tree.Unmarshal(&config); err != nil {
			log.G(ctx).WithError(err).Fatalf("failed to unmarshal config file %q", *configPath)
		}
	}

	snRoot := filepath.Join(*rootDir, "snapshotter")
	// the remote snapshotter is built on the overlayfs snapshotter
	if err := os.MkdirAll(snRoot, 0700); err != nil {
		log.G(ctx).WithError(err).Fatalf("failed to create %q", snRoot)
	}
	if err := overlayutils.Supported(snRoot); err != nil {
		log.G(ctx).WithError(err).Fatalf("snapshotter is not supported")
	}
	userxattr, err := overlayutils.NeedsUserXAttr(snRoot)
	if err != nil {
		log.G(ctx).WithError(err).Warnf("cannot detect whether \"userxattr\" option needs to be used, assuming to be %v", userxattr)
	}
	opq := layer.OverlayOpaqueTrusted
	if userxattr {
		opq = layer.OverlayOpaqueUser
	}
	fs, err := stargzfs.NewFilesystem(filepath.Join(*rootDir, "stargz"), config.Config,
		stargzfs.WithGetSources(source.FromDefaultLabels(registryHosts(config.ResolverConfig))),
		stargzfs.WithOverlayOpaqueType(opq),
		stargzfs.WithMetadataStore(memorymetadata.NewReader),
		stargzfs.WithMetricsLogLevel(logrus.DebugLevel),
	)
	if err != nil {
		log.G(ctx).WithError(err).Fatalf("failed to configure filesystem")
	}
	rs, err := snbase.NewSnapshotter(ctx, snRoot, fs, snbase.AsynchronousRemove)
	if err != nil {
		log.G(ctx).WithError(err).Fatalf("failed to configure snapshotter")
	}

	rpc := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(rpc, snapshotservice.FromSnapshotter(rs))
	if err := serve(ctx, rpc, *address); err != nil {
		log.G(ctx).WithError(err).Error("failed to serve snapshotter")
	}
	rpc.Stop()
	log.G(ctx).Debug("closing the snapshotter")
	if err := rs.Close(); err != nil {
		log.G(ctx).WithError(err).Warn("failed to close the snapshotter")
	}
	log.G(ctx).Info("exiting")
}

// serve listens on addr and serves rpc until SIGINT or SIGTERM (nil) or a serving error.
func serve(ctx context.Context, rpc *grpc.Server, addr string) error {
	if err := os.MkdirAll(filepath.Dir(addr), 0700); err != nil {
		return fmt.Errorf("failed to create directory %q: %w", filepath.Dir(addr), err)
	}
	// a stale socket would make the listen fail with EADDRINUSE
	if err := os.RemoveAll(addr); err != nil {
		return fmt.Errorf("failed to remove %q: %w", addr, err)
	}
	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, unix.SIGINT, unix.SIGTERM)
	l, err := net.Listen("unix", addr)
	if err != nil {
		return fmt.Errorf("error on listen socket %q: %w", addr, err)
	}
	errCh := make(chan error, 1)
	go func() {
		if err := rpc.Serve(l); err != nil {
			errCh <- fmt.Errorf("error on serving via socket %q: %w", addr, err)
		}
	}()
	log.G(ctx).WithField("address", addr).Info("serving")
	select {
	case s := <-sigCh:
		log.G(ctx).Infof("got %v", s)
		return nil
	case err := <-errCh:
		return err
	}
}
