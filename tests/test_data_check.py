"""`diffreid data check`: counts, problems and exit codes, through the CLI."""

from __future__ import annotations

import pytest
from reader_trees import MARKET, make_tree, write_image, write_images

from diffreid.cli import main
from diffreid.data.check import MAX_SHOWN, check_dataset


def run_check(capsys, spec, *flags):
    code = main(["data", "check", spec, *flags])
    out, err = capsys.readouterr()
    return code, out, err


def table(out):
    """{split: (identities, images, cameras)} from the printed table."""
    counts = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0] in ("train", "query", "gallery"):
            counts[fields[0]] = tuple(int(v) for v in fields[1:])
    return counts


def test_good_dataset(tmp_path, capsys):
    make_tree(tmp_path, MARKET)
    code, out, err = run_check(capsys, f"market1501:{tmp_path}")
    assert code == 0
    assert out.splitlines()[0] == f"market1501:{tmp_path}: usable"
    # gallery: distractor 0 + ids 2 and 7 (the junk -1 image is dropped)
    assert table(out) == {"train": (2, 3, 3), "query": (2, 2, 2), "gallery": (3, 3, 3)}
    assert "queries with a gallery match from another camera: 2 of 2" in out
    assert "no problems found" in out
    assert "opening images" in err and "8/8" in err  # tqdm progress bar on stderr


def test_missing_folder(tmp_path, capsys):
    make_tree(tmp_path, {k: v for k, v in MARKET.items() if k != "bounding_box_test"})
    code, out, _ = run_check(capsys, f"market1501:{tmp_path}")
    assert code == 1
    assert "NOT usable" in out.splitlines()[0]
    assert f"ERROR: {tmp_path / 'bounding_box_test'}: gallery folder bounding_box_test/ missing" in out
    assert f"ERROR: {tmp_path}: no gallery images; nothing to evaluate" in out
    assert table(out)["gallery"] == (0, 0, 0)


def test_corrupt_images(tmp_path, capsys):
    make_tree(tmp_path, MARKET)
    empty = tmp_path / "bounding_box_train" / "0002_c1s1_000451_03.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "bounding_box_test" / "0002_c6s1_000976_02.jpg"
    truncated.write_bytes(truncated.read_bytes()[:200])
    garbage = tmp_path / "bounding_box_train" / "0007_c3s3_077419_03.jpg"
    garbage.write_bytes(b"this is not a jpeg at all")
    code, out, _ = run_check(capsys, f"market1501:{tmp_path}")
    assert code == 0  # still usable: query 7 (camera 1) matches gallery 7 from camera 3
    assert f"warning: {empty}: empty image file (0 bytes)" in out
    assert f"warning: {truncated}: corrupt image (" in out
    assert f"warning: {garbage}: not a decodable image" in out
    # query 2's only gallery image is the truncated one: no valid match left
    assert f"warning: {tmp_path / 'query' / '0002_c3s1_000551_01.jpg'}: query identity 2 has no gallery image" in out
    assert "queries with a gallery match from another camera: 1 of 2" in out
    assert "0 errors, 4 warnings:" in out


def test_no_images_flag_skips_decoding(tmp_path, capsys):
    make_tree(tmp_path, MARKET)
    (tmp_path / "query" / "0007_c1s1_000001_00.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "bounding_box_train" / "0002_c1s1_000451_03.jpg").write_bytes(b"")
    code, out, _ = run_check(capsys, f"market1501:{tmp_path}", "--no-images")
    assert code == 0
    assert "empty image file (0 bytes)" in out and "decodable" not in out


def test_unparsable_names_compact(tmp_path, capsys):
    make_tree(tmp_path, MARKET)
    write_images(tmp_path / "bounding_box_train", [f"person_{i:03d}.jpg" for i in range(MAX_SHOWN + 5)])
    code, out, _ = run_check(capsys, f"market1501:{tmp_path}")
    assert code == 0
    lines = [line for line in out.splitlines() if "file name is not like" in line]
    assert len(lines) == MAX_SHOWN
    assert lines[0] == (f"  warning: {tmp_path / 'bounding_box_train' / 'person_000.jpg'}: file name is not like "
                        "0002_c1s1_000451_03.jpg; skipped")
    assert "  ... and 5 more like this" in out
    assert table(out)["train"] == (2, 3, 3)


def test_unmatched_query(tmp_path, capsys):
    make_tree(tmp_path, MARKET)
    write_image(tmp_path / "query" / "0009_c2s1_000100_00.jpg")
    write_image(tmp_path / "bounding_box_test" / "0009_c2s1_000200_00.jpg")  # same camera: no valid match
    code, out, _ = run_check(capsys, f"market1501:{tmp_path}")
    assert code == 0
    assert (f"warning: {tmp_path / 'query' / '0009_c2s1_000100_00.jpg'}: query identity 9 has no gallery image "
            "of it from another camera; 1 query image(s) cannot be scored") in out
    assert "queries with a gallery match from another camera: 2 of 3" in out


def test_no_query_matches_is_unusable(tmp_path, capsys):
    make_tree(tmp_path, {"bounding_box_train": [], "query": ["0002_c1s1_000001_00.jpg"],
                         "bounding_box_test": ["0002_c1s1_000002_00.jpg", "0003_c2s1_000002_00.jpg"]})
    code, out, _ = run_check(capsys, f"market1501:{tmp_path}")
    assert code == 1
    assert f"ERROR: {tmp_path}: no query has a gallery image of its identity from another camera" in out
    assert f"warning: {tmp_path / 'bounding_box_train'}: no images in bounding_box_train/" in out


@pytest.mark.parametrize("spec, message", [
    ("nosuchformat:{tmp}", "unknown dataset format 'nosuchformat'"),
    ("market1501:{tmp}/absent", "dataset directory not found"),
    ("market1501:{tmp}", "none of bounding_box_train/"),
])
def test_unreadable_dataset(tmp_path, capsys, spec, message):
    code, out, _ = run_check(capsys, spec.format(tmp=tmp_path))
    assert code == 1
    assert "NOT usable" in out and message in out


def test_report_api(tmp_path):
    make_tree(tmp_path, MARKET)
    report = check_dataset(f"market:{tmp_path}", open_images=False)
    assert report.usable and report.problems == []
    assert [(c.split, c.identities, c.images, c.cameras) for c in report.counts] == [
        ("train", 2, 3, 3), ("query", 2, 2, 2), ("gallery", 3, 3, 3)]
    assert (report.matched_queries, report.queries) == (2, 2)
