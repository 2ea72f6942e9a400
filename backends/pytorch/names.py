"""PyTorch state_dict names <-> the FDA-BNN model zoo's (MindSpore checkpoint) names, one to one.

    torch                              model zoo
    <bn>.weight                        <bn>.gamma
    <bn>.bias                          <bn>.beta
    <bn>.running_mean                  <bn>.moving_mean
    <bn>.running_var                   <bn>.moving_variance
    <bn>.num_batches_tracked           (dropped: MindSpore keeps no such counter)
    layerS.B.reluK.weight  (PReLU)     layerS.B.reluK.w
    conv / linear weight, bias         unchanged
    <conv>.noise_w.fc1.weight, ...     unchanged (noise module names are the same in both frameworks:
                                       <conv>.noise_{w,a}.fc{1,2}.weight)

Order: modules in registration order (= the reference file's order), and within a BatchNorm the
model zoo's moving_mean, moving_variance, gamma, beta. The framework-neutral rules (the reluK.a alias
of a MindSpore 1.x checkpoint, the missing/unexpected/mis-shaped check) live in bench/zoo_names.py.
"""
from __future__ import annotations

from torch import nn

from bench.zoo_names import PRELU_NAME

# per module type: (torch attribute, model zoo attribute) in the model zoo's order
_BN = (("running_mean", "moving_mean"), ("running_var", "moving_variance"), ("weight", "gamma"), ("bias", "beta"))
_PRELU = (("weight", PRELU_NAME),)


def torch_to_zoo(model: nn.Module) -> dict[str, str]:
    """{torch state_dict name: model zoo name} in the model zoo's order; every state_dict entry but
    num_batches_tracked appears exactly once."""
    state_keys = set(model.state_dict())
    mapping: dict[str, str] = {}
    for prefix, module in model.named_modules():
        dot = f"{prefix}." if prefix else ""
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            pairs = _BN
        elif isinstance(module, nn.PReLU):
            pairs = _PRELU
        else:
            own = list(module._parameters) + [b for b in module._buffers if b not in module._non_persistent_buffers_set]
            pairs = tuple((name, name) for name in own)
        for torch_attr, zoo_attr in pairs:
            if f"{dot}{torch_attr}" in state_keys:
                mapping[f"{dot}{torch_attr}"] = f"{dot}{zoo_attr}"
    missing = state_keys - set(mapping) - {k for k in state_keys if k.endswith(".num_batches_tracked")}
    if missing:
        raise AssertionError(f"names.py has no model zoo name for {sorted(missing)}")
    return mapping
