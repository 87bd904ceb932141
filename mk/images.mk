# Container images for the three services: docker/service.Dockerfile.
# See docker/README.md for the details and the measured sizes.

DOCKER ?= docker
# Any Debian-like image with python3 + venv; the harness passes a local one.
PYTHON_IMAGE ?= python:3.12-slim
IMAGE_PREFIX ?= chirp
# Computed on first use only (not on every `make` run), then fixed, so both
# images of one `make images` get the same tag.
IMAGE_TAG ?= $(eval IMAGE_TAG := $(or $(shell git describe --always --dirty 2>/dev/null),dev))$(IMAGE_TAG)
IMAGE_REVISION ?= $(eval IMAGE_REVISION := $(or $(shell git rev-parse --verify -q HEAD 2>/dev/null),unknown))$(IMAGE_REVISION)
IMAGE_SOURCE ?= $(eval IMAGE_SOURCE := $(or $(shell git config --get remote.origin.url 2>/dev/null),unknown))$(IMAGE_SOURCE)
# Build steps use the host network: it needs no bridge or iptables on the
# build machine, and reaches the package index wherever the host does.
DOCKER_BUILD_FLAGS ?= --network=host

IMAGE_SERVICES := user_service tweet_service feed_service
IMAGE_PORT_user_service := 5001
IMAGE_PORT_tweet_service := 5002
IMAGE_PORT_feed_service := 5003
# user_service -> chirp/user-service
image_ref = $(IMAGE_PREFIX)/$(subst _,-,$(1)):$(IMAGE_TAG)

images: $(addprefix image-,$(IMAGE_SERVICES)) ## Build the service images (chirp/*-service:$IMAGE_TAG)

$(addprefix image-,$(IMAGE_SERVICES)): image-%:
	$(DOCKER) build $(DOCKER_BUILD_FLAGS) -f docker/service.Dockerfile \
	  --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) \
	  --build-arg SERVICE=$* --build-arg PORT=$(IMAGE_PORT_$*) \
	  --build-arg VERSION="$(IMAGE_TAG)" --build-arg REVISION="$(IMAGE_REVISION)" \
	  --build-arg SOURCE="$(IMAGE_SOURCE)" \
	  -t $(call image_ref,$*) .

# The harness installs what it lacks (docker.io, debootstrap, postgresql-15,
# redis-server) and starts dockerd when no engine answers, as root.
test-images: venv ## Build the images on a local base and prove them (docker, Postgres, Redis, SIGTERM)
	CHIRP_IMAGE_TESTS=1 $(PY) -m pytest tests/images --confcutdir=tests/images -p no:cacheprovider -v

.PHONY: images test-images $(addprefix image-,$(IMAGE_SERVICES))
