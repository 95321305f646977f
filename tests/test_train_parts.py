"""The parts of the training engine: losses, pooling, non-local blocks, ReidNet, PK sampler, augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffreid.data.records import Record
from diffreid.errors import DiffreidError
from diffreid.reid.losses import (CenterLoss, batch_hard_triplet_loss, label_smoothed_cross_entropy, reid_loss,
                                  weighted_regularized_triplet_loss)
from diffreid.reid.model import ReidNet
from diffreid.reid.nonlocal_blocks import NonLocalBlock
from diffreid.reid.pooling import GeM
from diffreid.reid.sampler import PKBatchSampler
from diffreid.reid.train_data import TrainImages, collate_skipping
from diffreid.reid.transforms import train_transform

# four 1-D features: identity 0 at 0 and 1, identity 1 at 3 and 5
FEATURES = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_label_smoothing_matches_its_formula():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    log_p = torch.log_softmax(logits, 1)[0]
    expected = -(0.9 * log_p[1] + 0.1 / 3 * log_p.sum())
    assert label_smoothed_cross_entropy(logits, torch.tensor([1]), 0.1).item() == pytest.approx(expected.item(), 1e-6)


def test_batch_hard_triplet_by_hand():
    # hardest positive / nearest negative per anchor: (1, 3), (1, 2), (2, 2), (2, 4)
    gaps = torch.tensor([1 - 3, 1 - 2, 2 - 2, 2 - 4], dtype=torch.float)
    hinge = F.relu(gaps + 0.3).mean().item()
    assert batch_hard_triplet_loss(FEATURES, LABELS, 0.3).item() == pytest.approx(hinge, 1e-5)
    assert batch_hard_triplet_loss(FEATURES, LABELS, None).item() == pytest.approx(F.softplus(gaps).mean().item(), 1e-5)
    # far apart identities: no loss left with a margin
    assert batch_hard_triplet_loss(FEATURES * torch.tensor([[1.0], [1.0], [10.0], [10.0]]), LABELS, 0.3).item() == 0


def test_batch_hard_triplet_without_negatives_is_zero_not_nan():
    loss = batch_hard_triplet_loss(FEATURES, torch.zeros(4, dtype=torch.long), 0.3)
    assert loss.item() == 0 and not torch.isnan(loss)


def test_weighted_regularized_triplet_by_hand():
    dist = torch.cdist(FEATURES, FEATURES)
    total = 0.0
    for a in range(4):
        pos = [dist[a, j].item() for j in range(4) if LABELS[j] == LABELS[a]]
        neg = [dist[a, j].item() for j in range(4) if LABELS[j] != LABELS[a]]
        wp = np.exp(pos) / np.exp(pos).sum()
        wn = np.exp(np.negative(neg)) / np.exp(np.negative(neg)).sum()
        total += math.log1p(math.exp(float(np.dot(wp, pos) - np.dot(wn, neg))))
    assert weighted_regularized_triplet_loss(FEATURES, LABELS).item() == pytest.approx(total / 4, 1e-4)


def test_center_loss_and_reid_loss_terms():
    center = CenterLoss(2, 1)
    with torch.no_grad():
        center.centers.copy_(torch.tensor([[0.5], [4.0]]))
    assert center(FEATURES, LABELS).item() == pytest.approx((0.25 + 0.25 + 1 + 1) / 4 / 2)
    outputs = {"features": FEATURES, "logits": torch.zeros(4, 2)}
    terms = reid_loss(outputs, LABELS, label_smoothing=0.1, triplet="batch_hard", triplet_margin=0.3,
                      center_loss=center, center_weight=0.5)
    assert set(terms) == {"id", "triplet", "center", "total"}
    assert terms["id"].item() == pytest.approx(math.log(2))
    assert terms["total"].item() == pytest.approx(sum(terms[k].item() for k in ("id", "triplet", "center")))


def test_gem_spans_average_and_max():
    x = torch.rand(2, 3, 4, 4) + 0.1
    gem = GeM(p=1.0)
    assert torch.allclose(gem(x), x.mean((2, 3)), atol=1e-6)
    with torch.no_grad():
        gem.p.fill_(60.0)
    assert torch.allclose(gem(x), x.amax((2, 3)), rtol=0.05)


def test_nonlocal_block_starts_as_identity_and_mixes_positions():
    block = NonLocalBlock(8).eval()
    x = torch.randn(2, 8, 4, 3)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.out[1].weight.fill_(1.0)
    y = block(x)
    # a change at one position reaches every other position
    x2 = x.clone()
    x2[:, :, 0, 0] += 1.0
    changed = (block(x2) - y).abs().sum(1)
    assert (changed[:, 1:, :] > 0).all()


def test_reid_net_outputs_and_keys():
    torch.manual_seed(0)
    model = ReidNet("resnet18", num_classes=5, last_stride=1)
    x = torch.randn(4, 3, 64, 32)
    out = model.train()(x)
    assert out["features"].shape == (4, 512) and out["logits"].shape == (4, 5)
    model.eval()
    neck = model(x)
    # eval: the feature after the BNNeck (running statistics), and classify goes through the same neck
    expected = F.batch_norm(model.pooled(x), model.head.bottleneck.running_mean, model.head.bottleneck.running_var,
                            model.head.bottleneck.weight, model.head.bottleneck.bias)
    assert torch.allclose(neck, expected, atol=1e-5)
    assert torch.allclose(model.classify(x), model.head.classifier(neck), atol=1e-5)
    assert not model.head.bottleneck.bias.requires_grad
    assert {k.removeprefix("backbone.") for k in model.state_dict() if k.startswith("backbone.")} == \
        set(model.backbone.state_dict())


def test_agw_net_has_five_nonlocal_blocks_in_use():
    torch.manual_seed(0)
    model = ReidNet("resnet50", num_classes=3, pooling="gem", nonlocal_blocks=True).eval()
    assert len(model.nonlocal_blocks) == 5
    assert [b.theta.in_channels for b in model.nonlocal_blocks] == [512, 512, 1024, 1024, 1024]
    x = torch.randn(1, 3, 64, 32)
    before = model(x)
    with torch.no_grad():
        model.nonlocal_blocks[0].out[1].weight.fill_(1.0)
    assert not torch.allclose(model(x), before)
    assert not any(k.startswith("backbone.") and "nonlocal" in k for k in model.state_dict())


def test_reid_net_refuses_what_cannot_work():
    with pytest.raises(DiffreidError, match="non-local blocks need a ResNet"):
        ReidNet("mobilenet_v2", 3, nonlocal_blocks=True)
    with pytest.raises(DiffreidError, match="pools its own output"):
        ReidNet("osnet_x0_25", 3, pooling="gem")


LABELS_PK = [0] * 6 + [1] * 5 + [2] * 4 + [3] * 2 + [4] * 8 + [5] * 1


def test_pk_batches_hold_p_identities_of_k_images():
    sampler = PKBatchSampler(LABELS_PK, p=3, k=2, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        labels = [LABELS_PK[i] for i, _ in batch]
        assert len(batch) == 6 and len(set(labels)) == 3
        assert all(labels.count(label) == 2 for label in set(labels))
    # identity 5 has one image: drawn with replacement to make its group of K
    assert any(LABELS_PK[i] == 5 for batch in batches for i, _ in batch)


def test_pk_sampler_is_deterministic_per_seed_and_epoch():
    def epoch_of(seed, epoch):
        sampler = PKBatchSampler(LABELS_PK, p=2, k=2, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert epoch_of(0, 3) == epoch_of(0, 3)
    assert epoch_of(0, 3) != epoch_of(0, 4)
    assert epoch_of(0, 3) != epoch_of(1, 3)


def test_pk_sampler_splits_each_batch_between_ranks():
    whole = list(PKBatchSampler(LABELS_PK, p=4, k=2, seed=7))
    shares = [list(PKBatchSampler(LABELS_PK, p=4, k=2, seed=7, rank=r, world_size=2)) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == len(whole)
    for batch, first, second in zip(whole, *shares):
        assert first + second == batch
        assert not {LABELS_PK[i] for i, _ in first} & {LABELS_PK[i] for i, _ in second}
    with pytest.raises(DiffreidError, match="split evenly"):
        PKBatchSampler(LABELS_PK, p=3, k=2, world_size=2)
    with pytest.raises(DiffreidError, match="fewer than P"):
        PKBatchSampler(LABELS_PK, p=7, k=2)


def test_augmentation_follows_the_item_seed(tiny_persons):
    records = sorted((tiny_persons / "bounding_box_train").glob("*.jpg"))[:2]
    images = TrainImages([Record(p, 0, 1, "train") for p in records], train_transform((64, 32), pad=4))
    first, again, other = images[(0, 11)], images[(0, 11)], images[(0, 12)]
    assert first[0].shape == (3, 64, 32) and first[0].dtype == torch.float32
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])


def test_unreadable_training_image_is_dropped_from_its_batch(tmp_path, tiny_persons, caplog):
    bad = tmp_path / "0001_c1s1_000001_00.jpg"
    bad.write_bytes(b"not a jpeg")
    good = sorted((tiny_persons / "bounding_box_train").glob("*.jpg"))[0]
    images = TrainImages([Record(bad, 0, 1, "train"), Record(good, 1, 1, "train")], train_transform((64, 32)))
    x, labels = collate_skipping([images[(0, 1)], images[(1, 1)]])
    assert x.shape == (1, 3, 64, 32) and labels.tolist() == [1]
    assert "unreadable image skipped" in caplog.text and str(bad) in caplog.text


def test_generated_people_join_the_class_of_the_person_they_were_drawn_from(tiny_persons, tmp_path, caplog):
    """With merge_generated, a Diff-Person identity whose manifest names a person of an earlier dataset is
    that person's class; one drawn from elsewhere stays a class apart. Before: always a class apart."""
    import json
    import shutil

    from diffreid.data import load_dataset
    from diffreid.filtering.diffperson import file_name
    from diffreid.reid.train_data import load_train_set

    real = f"market1501:{tiny_persons}"
    pids = sorted({r.pid for r in load_dataset(real).train})
    image = load_dataset(real).train[0].path
    generated, lines = tmp_path / "dp", []
    for gpid, (source, source_pid) in enumerate([(real, pids[0]), (real, pids[3]), ("market1501:/elsewhere", 7)], 1):
        for frame in range(2):
            (generated / "bounding_box_train").mkdir(parents=True, exist_ok=True)
            shutil.copy(image, generated / "bounding_box_train" / file_name(gpid, frame))
        lines.append(json.dumps({"file": f"bounding_box_train/{file_name(gpid, 0)}", "pid": gpid,
                                 "source": source, "source_pid": source_pid}))
    (generated / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    # the same real root spelled another way still matches the manifest's spelling
    spelled = f"market1501:{tiny_persons}/../{tiny_persons.name}"
    apart = load_train_set([spelled, f"diffperson:{generated}"])
    merged = load_train_set([spelled, f"diffperson:{generated}"], merge_generated=True)
    assert len(apart.classes) == len(pids) + 3 and len(merged.classes) == len(pids) + 1
    by_class = {}
    for record in merged.records:
        by_class.setdefault(record.pid, set()).add(record.path.parent.parent.name)
    first, fourth = pids.index(pids[0]), pids.index(pids[3])
    assert by_class[first] == by_class[fourth] == {tiny_persons.name, "dp"}  # real and generated images together
    assert merged.classes[-1] == {"dataset": f"diffperson:{generated}", "pid": 3}
    # generated data given first has no earlier person to join: said, and nothing merges
    alone = load_train_set([f"diffperson:{generated}", real], merge_generated=True)
    assert len(alone.classes) == len(pids) + 3 and "give those datasets first" in caplog.text
