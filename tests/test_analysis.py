"""The analysis tools on artefacts of real short training runs on synthetic videos: numbers checked against hand
computations and the layer's own outputs, images that exist, have the expected size and are not blank."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vmp_lightning.analysis import (
    AnalysisError,
    baseline_pns,
    compare_runs,
    per_class,
    pn_compare,
    prompt_layers_of_checkpoint,
    read_clip,
    sigmoid_layer,
    visualize,
    weight_similarity,
)
from vmp_lightning.commands import main
from vmp_lightning.normalization import Normalization

REPO = Path(__file__).parents[1]


def not_blank(path: Path, min_width: int = 0) -> Image.Image:
    image = Image.open(path)
    assert image.width >= min_width and len(set(image.convert("L").getdata())) > 10, path
    return image


def test_a_checkpoint_is_identical_to_itself_in_every_layer(trained, tmp_path):
    layers = weight_similarity([trained["vmp"], trained["vmp"]], tmp_path)
    state = torch.load(trained["vmp"], weights_only=True)["state_dict"]
    learned = [
        k for k in state if not k.startswith("model.prompts.") and "running" not in k and state[k].is_floating_point()
    ]
    assert [layer.name for layer in layers] == [k[len("model.") :] for k in learned]  # network order, prompt aside
    assert all(v == pytest.approx(1.0) for layer in layers for v in layer.cosine.values())
    assert all(v == 0.0 for layer in layers for v in layer.relative_change.values())
    not_blank(tmp_path / "weight_similarity.png", min_width=500)


def test_weight_similarity_of_three_checkpoints(trained, tmp_path):
    layers = weight_similarity([trained["base"], trained["vmp"], trained["vmp"]], tmp_path, ["base", "vmp", "again"])
    assert list(layers[0].cosine) == ["base vs vmp", "base vs again", "vmp vs again"]
    first = layers[0]
    a = torch.load(trained["base"], weights_only=True)["state_dict"]["model." + first.name].flatten().double()
    b = torch.load(trained["vmp"], weights_only=True)["state_dict"]["model." + first.name].flatten().double()
    assert first.cosine["base vs vmp"] == pytest.approx(float(a @ b / (a.norm() * b.norm())))
    assert first.relative_change["base vs vmp"] == pytest.approx(float((b - a).norm() / a.norm()))
    rows = list(csv.DictReader((tmp_path / "weight_similarity.csv").open()))
    assert len(rows) == len(layers) and float(rows[0]["cosine vmp vs again"]) == pytest.approx(1.0)


def test_weight_similarity_refuses_another_architecture(trained, tmp_path):
    from vmp_lightning.backbones import TimeSformer

    other = tmp_path / "timesformer.pt"
    torch.save(TimeSformer(4, img_size=32, embed_dim=32, depth=1, num_heads=2, num_frames=4).state_dict(), other)
    with pytest.raises(AnalysisError, match="different architectures"):
        weight_similarity([trained["base"], other], tmp_path)


def test_per_class_equals_a_hand_computation(trained, tmp_path):
    rows = per_class(trained["base_preds"], trained["vmp_preds"], tmp_path)
    dumps = [list(csv.DictReader(p.open())) for p in (trained["base_preds"], trained["vmp_preds"])]
    for row in rows:
        accuracies = []
        for dump in dumps:
            of_class = [r for r in dump if int(r["label"]) == row["class"]]
            accuracies.append(sum(r["prediction"] == r["label"] for r in of_class) / len(of_class))
        assert (row["accuracy_base"], row["accuracy_other"]) == pytest.approx(tuple(accuracies))
        assert row["videos"] == len([r for r in dumps[0] if int(r["label"]) == row["class"]])
    assert [r["difference"] for r in rows] == sorted((r["difference"] for r in rows), reverse=True)
    assert {r["name"] for r in rows} == {"right", "left", "down", "up"}  # class names from the dump's metrics
    not_blank(tmp_path / "per_class.png")
    assert (tmp_path / "confusions.csv").read_text().startswith("true,predicted,count_base,count_other,change")


def test_per_class_refuses_dumps_of_different_videos(trained, tmp_path):
    rows = trained["vmp_preds"].read_text().splitlines()
    fewer = tmp_path / "test_predictions.csv"
    fewer.write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(AnalysisError, match="hold different videos \\(1 only in the first, 0 only in the second\\)"):
        per_class(trained["base_preds"], fewer, tmp_path)


def test_visualized_maps_are_the_layers_own_outputs(trained, tmp_path):
    layers = prompt_layers_of_checkpoint(trained["vmp"])
    clip = read_clip(trained["video"], frames=9, stride=1)
    traces = visualize(clip, layers, tmp_path, surfaces=True)
    (site,) = layers
    layer = layers[site]
    normalised = layer.normalization.apply(clip.unsqueeze(0))
    with torch.no_grad():
        _, attention = layer(normalised)
    np.testing.assert_allclose(traces[site].attention, attention[0].numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(traces[site].differences, layer.differences(normalised)[0].numpy(), atol=0)
    assert traces[site].prompts.shape == (8, 32, 32, 3)
    not_blank(tmp_path / f"{site}_grid.png", min_width=8 * 100)
    not_blank(tmp_path / f"{site}_surfaces.png")
    not_blank(tmp_path / "pn_curve.png")
    assert Image.open(tmp_path / f"{site}_prompts.gif").n_frames == 8


def test_visualize_works_with_the_published_values_and_says_when_the_video_is_short(trained, tmp_path):
    main(["visualize", str(trained["video"]), "--published", "hmdb51", "--frames", "4", "--out", str(tmp_path)])
    assert (tmp_path / "input_grid.png").is_file() and (tmp_path / "input_prompts.gif").is_file()
    with pytest.raises(AnalysisError, match="16 frames, shorter than the clip \\(21 frames at stride 1 need 21\\)"):
        read_clip(trained["video"], frames=21)
    with pytest.raises(SystemExit) as stop:
        main(["visualize", str(trained["video"]), "--ckpt", str(trained["base"]), "--out", str(tmp_path)])
    assert stop.value.code == 2  # "has no motion prompt layer (trained with vmp off)", one line


def test_pn_compare_draws_each_function_on_the_same_pair(trained, tmp_path):
    pns = baseline_pns(gamma=0.3)
    clip = read_clip(trained["video"], frames=2, start=5)
    traces = pn_compare(clip, pns, tmp_path)
    layer = sigmoid_layer(1.05, -2.67)
    normalised = Normalization().apply(clip.unsqueeze(0))
    d = layer.differences(normalised)
    for name, pn in pns.items():
        with torch.no_grad():
            np.testing.assert_allclose(traces[name].attention[0], pn(d)[0, 0].numpy(), atol=1e-7)
    assert pns["Gamma"].gamma.item() == pytest.approx(0.3)
    not_blank(tmp_path / "pn_compare.png", min_width=400)
    not_blank(tmp_path / "pn_curves.png")


def test_compare_runs_from_a_sweep_summary_and_a_manifest(tmp_path):
    summary = tmp_path / "summary.csv"
    summary.write_text("trial,model.init_args.lambda_v,val/acc1,folder\n0,0.5,0.5,a\n1,0.5,0.7,b\n2,1.0,0.2,c\n")
    points = compare_runs(summary, tmp_path / "sweep", metric="val/acc1")
    assert [(p["x"], p["value"]) for p in points] == [(0.5, 0.5), (0.5, 0.7), (1.0, 0.2)]
    not_blank(tmp_path / "sweep" / "compare_runs.png")
    import json

    runs = tmp_path / "runs"
    for model, seed, acc in (("lambda_0", 0, 0.4), ("lambda_0", 1, 0.6), ("lambda_0.5", 0, 0.9)):
        folder = runs / "lambda" / model / "finegym" / f"seed{seed}" / "p" / "r"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"test": {"test/acc1": acc, "test/acc5": 1.0}}))
    points = compare_runs(REPO / "experiments" / "ablations" / "lambda.yaml", tmp_path / "m", runs=runs)
    assert sorted((p["x"], p["group"], round(p["value"], 6)) for p in points) == [
        (0.0, "seed 0", 0.4),
        (0.0, "seed 1", 0.6),
        (0.5, "seed 0", 0.9),
    ]
    with pytest.raises(AnalysisError, match="none of its runs"):
        compare_runs(REPO / "experiments" / "ablations" / "pn.yaml", tmp_path / "n", runs=runs)


def test_visualize_a_dataset_item_as_the_loader_gives_it(synthetic_root, tmp_path):
    from helpers import tiny_data_args

    data = ["--", *tiny_data_args(synthetic_root)]
    main(["visualize", "--item", "val", "1", "--mn", "1", "0.2", "--frames", "4", "--out", str(tmp_path), *data])
    assert not_blank(tmp_path / "input_grid.png", min_width=4 * 100)
    with pytest.raises(SystemExit) as stop:
        main(["visualize", "--item", "val", "99", "--out", str(tmp_path), *data])
    assert stop.value.code == 2


def test_the_images_go_to_the_active_wandb_run(trained, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    run = wandb.init(dir=str(tmp_path), project="analysis")
    try:
        per_class(trained["base_preds"], trained["vmp_preds"], tmp_path / "out")
    finally:
        run.finish()
    (folder,) = tmp_path.glob("wandb/offline-run-*")
    assert list((folder / "files" / "media" / "images").glob("per_class_*.png"))


def test_every_analysis_command_runs_with_the_docs_flags(trained, synthetic_root, tmp_path, capsys):
    """The commands as docs/analysis.md writes them (their parsers included: a default the parser cannot take
    fails here and not in a call of the function)."""
    from helpers import tiny_data_args

    data = ["--", *tiny_data_args(synthetic_root)]
    out = {name: str(tmp_path / name) for name in ("vis", "pn", "pn_file", "ws", "pc", "cr")}
    summary = tmp_path / "summary.csv"
    summary.write_text("trial,model.init_args.lambda_v,val/acc1,folder\n0,0.5,0.5,a\n1,1.0,0.7,b\n")
    commands = [
        ["visualize", "--item", "val", "0", "--ckpt", str(trained["vmp"]), "--frames", "4", "--out", out["vis"], *data],
        ["pn-compare", "--item", "val", "0", "--out", out["pn"], *data],
        ["pn-compare", str(trained["video"]), "--mn", "1", "0.2", "--out", out["pn_file"]],
        ["weight-similarity", str(trained["base"]), str(trained["vmp"]), "--labels", "baseline", "vmp"],
        ["per-class", str(trained["base_preds"]), str(trained["vmp_preds"]), "--out", out["pc"]],
        ["compare-runs", str(summary), "--metric", "val/acc1", "--out", out["cr"]],
    ]
    commands[3] += ["--out", out["ws"]]
    for command in commands:
        main(command)
        assert "written to" in capsys.readouterr().out, command
    not_blank(Path(out["vis"]) / "input_grid.png")
    for folder, image in (("pn", "pn_compare.png"), ("pn_file", "pn_compare.png"), ("ws", "weight_similarity.png")):
        not_blank(Path(out[folder]) / image)
    not_blank(Path(out["pc"]) / "per_class.png")
    not_blank(Path(out["cr"]) / "compare_runs.png")
