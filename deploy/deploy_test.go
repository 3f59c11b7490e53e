package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func operationsDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestManifests renders the base and every overlay, decodes every object
// strictly into k8s.io/api types, and runs every check against the
// binary's own settings (cli.Settings) and the operations doc.
func TestManifests(t *testing.T) {
	st, doc := loadSettings(), operationsDoc(t)
	for dir, r := range renderAll(t) {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			t.Logf("%d objects: %v", len(r.all), r.all)
			for name, err := range map[string]error{
				"settings":  checkSettings(r, st),
				"probes":    checkProbes(r, st),
				"security":  checkSecurity(r),
				"files":     checkFiles(r),
				"secrets":   checkSecretsDocumented(r, doc),
				"workloads": checkWorkloads(r, st),
			} {
				if err != nil {
					t.Errorf("%s:\n%v", name, err)
				}
			}
		})
	}
}

// TestChecksCatchMutations breaks a copy of deploy/ in the ways the checks
// exist for and shows that each break fails the rendering or a check, with
// a message naming the problem.
func TestChecksCatchMutations(t *testing.T) {
	st, doc := loadSettings(), operationsDoc(t)
	cases := []struct {
		name, file, old, new string
		dir                  string // kustomization to render
		want                 string // in the error
	}{
		{"unknown field", "base/api-deployment.yaml", "      terminationGracePeriodSeconds: 60", "      terminationGracePeriodSecs: 60", "base", `unknown field "terminationGracePeriodSecs"`},
		{"misspelled probe field", "base/ingest-statefulset.yaml", "            periodSeconds: 5", "            periodSecond: 5", "base", "unknown field"},
		{"unknown variable in a ConfigMap", "base/kustomization.yaml", "      - STREAMJOIN_WRITERS=2", "      - STREAMJOIN_WRITER=2", "base", "STREAMJOIN_WRITER is not a setting of streamjoin run"},
		{"variable of another command", "base/kustomization.yaml", "      - STREAMJOIN_KEY=id", "      - STREAMJOIN_KEY=id\n      - STREAMJOIN_SCHEMA=streamjoin", "base", "STREAMJOIN_SCHEMA is not a setting of streamjoin watch"},
		{"unknown flag", "base/migrate-job.yaml", `args: ["migrate"]`, `args: ["migrate", "--dry-run"]`, "base", "streamjoin migrate has no flag --dry-run"},
		{"unknown command", "base/migrate-job.yaml", `args: ["migrate"]`, `args: ["migrations"]`, "base", `streamjoin has no command "migrations"`},
		{"probe on another port", "base/api-deployment.yaml", "              containerPort: 8080", "              containerPort: 9090", "base", "port named http is 9090, but streamjoin run listens on 8080"},
		{"http-addr moved without the port", "base/kustomization.yaml", "      - STREAMJOIN_MAX_IN_FLIGHT=1000", "      - STREAMJOIN_MAX_IN_FLIGHT=1000\n      - STREAMJOIN_HTTP_ADDR=:9000", "base", "listens on 9000"},
		{"liveness on /ready", "base/ingest-statefulset.yaml", "              path: /health", "              path: /ready", "base", "liveness and readiness both probe /ready"},
		{"no readiness probe", "base/api-deployment.yaml", "          readinessProbe:\n            httpGet:\n              path: /ready\n              port: http\n            periodSeconds: 5\n            timeoutSeconds: 3\n            failureThreshold: 2\n", "", "base", "no HTTP readiness probe"},
		{"runs as root", "base/migrate-job.yaml", "        runAsUser: 65532", "        runAsUser: 0", "base", "runAsUser 65532"},
		{"writable root", "base/watch-deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "base", "readOnlyRootFilesystem: true"},
		{"no memory limit", "base/api-deployment.yaml", "            limits:\n              memory: 256Mi\n", "", "base", "limit memory"},
		{"undocumented Secret key", "base/ingest-statefulset.yaml", "                  key: dsn", "                  key: url", "base", "Secret streamjoin-postgres-credentials key url"},
		{"password file not mounted", "overlays/production/kafka-password-ingest.yaml", "                path: password", "                path: passwd", "overlays/production", "STREAMJOIN_KAFKA_SASL_PASSWORD_FILE=/var/run/secrets/streamjoin/kafka/password: no mounted volume"},
		{"dynamic instance id", "base/ingest-statefulset.yaml", "                  fieldPath: metadata.name", "                  fieldPath: spec.nodeName", "base", "STREAMJOIN_INSTANCE_ID must come from metadata.name"},
		{"grace shorter than shutdown", "base/ingest-statefulset.yaml", "      terminationGracePeriodSeconds: 60", "      terminationGracePeriodSeconds: 35", "base", "does not cover shutdown-timeout + http-shutdown-timeout = 40s"},
		{"PDB selects nothing", "base/api-pdb.yaml", "      app.kubernetes.io/component: api", "      app.kubernetes.io/component: apis", "base", "PodDisruptionBudget streamjoin-api must select exactly one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hit := false
			fsys := deployTree(t, func(path, content string) string {
				if filepath.ToSlash(path) != tc.file {
					return content
				}
				if !strings.Contains(content, tc.old) {
					t.Fatalf("%s holds no %q: update the mutation", tc.file, tc.old)
				}
				hit = true
				return strings.Replace(content, tc.old, tc.new, 1)
			})
			if !hit {
				t.Fatalf("no file %s", tc.file)
			}
			r, err := render(fsys, tc.dir)
			if err == nil {
				err = errors.Join(checkSettings(r, st), checkProbes(r, st), checkSecurity(r), checkFiles(r), checkSecretsDocumented(r, doc), checkWorkloads(r, st))
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("mutation %q: got %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
}
