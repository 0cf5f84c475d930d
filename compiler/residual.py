"""Stage 5: the residual stream layout: one index per feature, in order of writing.

`one` and `bos` come first, then the embedding features, then what each layer's heads
and MLPs write. The layout keeps each feature's meaning (the s-op and the function of
its value it holds), which is what inspection tools use to decode the residual stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from .features import BOS, ONE, Feature
from .lower import Lowered
from .schedule import Schedule


@dataclass
class Layout:
    features: list[Feature]
    index: dict[int, int]          # feature uid -> residual index

    @property
    def d_model(self) -> int:
        return len(self.features)

    def __getitem__(self, feature: Feature) -> int:
        return self.index[feature.uid]

    def labels(self) -> list[str]:
        return [f.label for f in self.features]


def layout(lowered: Lowered, sched: Schedule) -> Layout:
    feats: list[Feature] = [ONE, BOS]
    feats += [e.feature for e in lowered.embed if e.where == "token"]
    feats += [e.feature for e in lowered.embed if e.where == "position"]
    for layer in range(sched.num_layers):
        for head in sched.heads[layer]:
            feats += [f for f, _, _ in head.values]
        for mlp in sched.mlps[layer]:
            feats += [f for f, _, _ in mlp.outputs]
    seen: set[int] = set()
    ordered = []
    for f in feats:
        if f.uid not in seen:
            seen.add(f.uid)
            ordered.append(f)
    # features read somewhere but never written would be a lowering bug
    index = {f.uid: i for i, f in enumerate(ordered)}
    for ref in lowered.readout.reads:
        for f in ref.read().features():
            if f.uid not in index:
                raise AssertionError(f"feature {f.label} is read but never written")
    return Layout(ordered, index)
