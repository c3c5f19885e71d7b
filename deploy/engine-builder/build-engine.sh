#!/bin/sh
# Build the TensorRT model directory once: /checkpoints/$STANET_CHECKPOINT -> /models/$STANET_MODEL/<version>/model.plan
# (verified against onnxruntime by `stanet export`). A version folder that exists is kept: versions are never
# overwritten, so restarting the stack does not rebuild.
set -eu
model="${STANET_MODEL:-stanet}"
version="${STANET_MODEL_VERSION:-1}"
if [ -f "/models/${model}/${version}/model.plan" ]; then
    echo "build-engine: /models/${model}/${version}/model.plan exists; nothing to build"
    exit 0
fi
exec stanet export --checkpoint "/checkpoints/${STANET_CHECKPOINT:-best.pt}" --repository /models \
    --target tensorrt --name "${model}" --version "${version}" --max-batch-size "${STANET_MAX_BATCH_SIZE:-8}" \
    --timing-cache /models/.tensorrt_timing.cache
