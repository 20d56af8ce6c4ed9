"""`VideoClassifier`: any video backbone, an optional motion prompt layer in front, loss ``CE + lambda_v * V``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from vmp_lightning.backbones.checkpoints import load_weights
from vmp_lightning.data.datamodule import Normalization
from vmp_lightning.evaluation import Aggregation, ClipScores, aggregate_videos, classification_report, write_predictions
from vmp_lightning.loggers import run_directory
from vmp_lightning.prompt import MotionPrompt, PowerNorm, VNormalization, temporal_variation


def _built_by_cli() -> bool:
    """True while LightningCLI instantiates the module (it then supplies the config as hyper-parameters)."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    return _given_hyperparameters.get() is not None


def find_head(backbone: nn.Module, num_classes: int) -> str:
    """Name of the classifier head: the last Linear / Conv layer whose output size is ``num_classes``."""
    found = ""
    for name, module in backbone.named_modules():
        out = getattr(module, "out_features", None) or getattr(module, "out_channels", None)
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and out == num_classes:
            found = name
    if not found:
        raise ValueError(
            f"cannot find the classifier head of {type(backbone).__name__}: no Linear/Conv layer has "
            f"{num_classes} outputs; set model.head to the head's module name"
        )
    return found


def accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Top-1 and top-5 (top-k capped at the number of classes) accuracy, micro-averaged over clips."""
    return MetricCollection(
        {
            "acc1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "acc5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
        },
        prefix=prefix,
    )


class VideoClassifier(L.LightningModule):
    """Video classification with optional Video Motion Prompts.

    Args:
        backbone: builds the network from the number of classes (``backbone(num_classes) -> nn.Module`` that maps
            ``B x C x T x H x W`` to logits); in YAML a ``class_path`` whose first argument is ``num_classes``.
        num_classes: linked from the data module by the CLI.
        vmp: put a `MotionPrompt` in front of the backbone. The CLI links this switch to the data module, which
            then samples T+1 frames.
        vmp_sites: where the prompts go for backbones with several inputs (``SlowFast``: ``["slow"]``,
            ``["fast"]`` or ``["slow", "fast"]``, the three VMP rows of Table 2); None = all of the backbone's
            sites (the input, for single-input backbones).
        share_prompt: one set of (m, n) for all sites instead of one per site.
        pn: the prompt's PN function (default: the paper's learnable sigmoid).
        lambda_v: weight of the temporal attention variation V in the loss; 0 skips computing V.
        v_normalization: how V is normalised (see `temporal_variation`).
        normalization: the data's mean / std / channel order (a `Normalization` or its dict), linked from the data
            module; the prompt layer de-normalises with it, so it is required when ``vmp`` is on.
        reference_luma: use the reference code's luma (BT.601 weights applied as if RGB input were BGR).
        optimizer, lr_scheduler: LightningCLI callables; the prompt gets its own param group.
        prompt_lr_scale, prompt_weight_decay: the prompt group's lr multiplier and weight decay (None: the
            optimizer's), defaults as the reference code (same lr and weight decay as the backbone).
        train_backbone, train_head, train_prompt: what is trained (frozen parts keep their BatchNorm statistics).
        head: module name of the classifier head inside the backbone (found automatically when None).
        aggregation: how the views of a test video are combined (``sum_logits`` or ``mean_softmax``).
        init_checkpoint: weights to start from (path or URL): a pytorchvideo / PySlowFast / TimeSformer ``.pyth``,
            timm ViT weights, a state dict, or a checkpoint of this project (then the prompts are loaded too).
            A head of another size is re-initialised; the load report is printed and logged.
        checkpoint_min_match: fraction of the parameters the checkpoint must fill, else it is an error.

    Validation and test are evaluated exactly, also under DDP: clip scores are gathered from every rank and each
    ``(video_id, view)`` counted once. Both report clip- and video-level top-1 / top-5 and mean-class accuracy;
    the test also writes ``test_predictions.csv`` and ``test_metrics.json`` (per-class accuracy, confusion
    matrix) into the run folder.
    """

    def __init__(
        self,
        backbone: Callable[[int], nn.Module],
        num_classes: int,
        vmp: bool = False,
        vmp_sites: list[str] | None = None,
        share_prompt: bool = False,
        pn: PowerNorm | None = None,
        lambda_v: float = 0.0,
        v_normalization: VNormalization = "mean",
        normalization: Normalization | dict | None = None,
        reference_luma: bool = False,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        prompt_lr_scale: float = 1.0,
        prompt_weight_decay: float | None = None,
        train_backbone: bool = True,
        train_head: bool = True,
        train_prompt: bool = True,
        head: str | None = None,
        aggregation: Aggregation = "sum_logits",
        init_checkpoint: str | None = None,
        checkpoint_min_match: float = 0.5,
    ) -> None:
        super().__init__()
        # Under LightningCLI every argument is saved as its config, so `--ckpt_path` and `load_from_checkpoint`
        # can rebuild the model; built in Python, objects such as a backbone lambda cannot be saved.
        self.save_hyperparameters(ignore=[] if _built_by_cli() else ["backbone", "pn", "optimizer", "lr_scheduler"])
        if lambda_v < 0:
            raise ValueError(f"lambda_v must be >= 0, got {lambda_v}")
        if lambda_v > 0 and not vmp:
            raise ValueError(f"lambda_v={lambda_v} weights the motion prompt's V term, but vmp is off")
        self.backbone = backbone(num_classes)
        sites = tuple(getattr(self.backbone, "prompt_sites", ("input",)))
        chosen = list(sites if vmp_sites is None else vmp_sites)
        if not set(chosen) <= set(sites) or not chosen:
            raise ValueError(f"vmp_sites must be a non-empty subset of {list(sites)} for this backbone, got {chosen}")
        self.prompts = nn.ModuleDict()  # the distinct prompt layers; self.site_prompts maps sites onto them
        self.site_prompts: dict[str, MotionPrompt] = {}
        if isinstance(normalization, dict):
            normalization = Normalization(**normalization)
        if vmp:
            if normalization is None:
                raise ValueError(
                    "vmp=True needs the data's normalization (mean, std, channel order) to de-normalise frames; "
                    "the CLI links it from the data module, in Python pass normalization=datamodule.normalization"
                )
            order = "bgr" if reference_luma else normalization.channel_order
            names = ["shared"] if share_prompt and len(chosen) > 1 else chosen
            for index, name in enumerate(names):  # a given PN module is copied, so each layer owns its parameters
                layer_pn = copy.deepcopy(pn) if pn is not None and index > 0 else pn
                self.prompts[name] = MotionPrompt(normalization.mean, normalization.std, order, layer_pn)
            self.site_prompts = {site: self.prompts[site if site in self.prompts else "shared"] for site in chosen}
        self.checkpoint_report = load_weights(self, init_checkpoint, checkpoint_min_match) if init_checkpoint else None
        if self.checkpoint_report is not None:
            rank_zero_info(self.checkpoint_report.summary())
        self.lambda_v, self.v_normalization = lambda_v, v_normalization
        self.optimizer_factory, self.scheduler_factory = optimizer, lr_scheduler
        self.head_name = head or find_head(self.backbone, num_classes)
        self._set_trainable(train_backbone, train_head, train_prompt)
        self.num_classes, self.aggregation = num_classes, aggregation
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.eval_scores = {"val": ClipScores(), "test": ClipScores()}
        self.reported_bad_videos: set[str] = set()

    def on_fit_start(self) -> None:
        if self.checkpoint_report is not None and self.logger is not None:
            counts = {f"init_checkpoint/{k}": v for k, v in self.checkpoint_report.counts().items()}
            self.logger.log_hyperparams({**counts, "init_checkpoint/fraction": self.checkpoint_report.fraction})

    # --- parameters -------------------------------------------------------------------------------------------
    def _head_parameters(self) -> Iterator[nn.Parameter]:
        return self.backbone.get_submodule(self.head_name).parameters()

    def _set_trainable(self, backbone: bool, head: bool, prompt: bool) -> None:
        self.backbone.requires_grad_(backbone)
        for p in self._head_parameters():
            p.requires_grad_(head)
        self.prompts.requires_grad_(prompt)
        self._frozen_body = not backbone

    def train(self, mode: bool = True) -> VideoClassifier:
        """A frozen backbone runs in eval mode (BatchNorm statistics and dropout fixed) except for its head."""
        super().train(mode)
        if mode and self._frozen_body:
            self.backbone.eval()
            self.backbone.get_submodule(self.head_name).train()
        return self

    def configure_optimizers(self):
        prompt_params = [p for p in self.prompts.parameters() if p.requires_grad]
        prompt_ids = {id(p) for p in prompt_params}
        other = [p for p in self.parameters() if p.requires_grad and id(p) not in prompt_ids]
        groups: list[dict] = [{"params": other, "name": "backbone"}]
        if prompt_params:
            groups.append({"params": prompt_params, "name": "prompt"})
        optimizer = self.optimizer_factory(groups)
        if prompt_params:
            group = optimizer.param_groups[-1]
            group["lr"] *= self.hparams.prompt_lr_scale
            if self.hparams.prompt_weight_decay is not None:
                group["weight_decay"] = self.hparams.prompt_weight_decay
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer)}}

    # --- forward and loss -------------------------------------------------------------------------------------
    @property
    def prompt(self) -> MotionPrompt | None:
        """The prompt layer when there is exactly one (None without VMPs)."""
        layers = list(self.prompts.values())
        if len(layers) > 1:
            raise RuntimeError("this model has one prompt per site: use model.prompts[site]")
        return layers[0] if layers else None

    def forward(self, clip: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and the attention maps of each prompted site (empty without VMPs)."""
        if hasattr(self.backbone, "prompt_sites"):
            return self.backbone(clip, self.site_prompts)
        if not self.site_prompts:
            return self.backbone(clip), {}
        prompts, attention = self.site_prompts["input"](clip)
        return self.backbone(prompts), {"input": attention}

    def _loss(self, batch: dict, stage: str) -> tuple[Tensor, Tensor]:
        """Logits and ``CE + lambda_v * V`` of a batch, logging the loss terms and the videos that were skipped."""
        logits, attention = self(batch["video"])
        labels = batch["label"]
        ce = F.cross_entropy(logits.float(), labels)
        loss = ce
        train = stage == "train"
        log = {"on_step": train, "on_epoch": True, "batch_size": labels.shape[0], "sync_dist": not train}
        if attention and self.lambda_v > 0:
            variation = sum(temporal_variation(maps, self.v_normalization) for maps in attention.values())
            loss = ce + self.lambda_v * variation
            self.log(f"{stage}/V", variation, **log)
        self.log(f"{stage}/ce", ce, **log)
        self.log(f"{stage}/loss", loss, prog_bar=stage != "test", **log)
        self._report_bad_videos(batch, stage)
        return logits, loss

    def _report_bad_videos(self, batch: dict, stage: str) -> None:
        """Each unreadable video is reported once (it was replaced, see ``on_bad_video``); the count per epoch
        is logged as ``data/bad_videos_<stage>``, summed over ranks."""
        bad = [entry for entry in batch.get("bad_video", []) if entry]
        for entry in bad:
            if entry not in self.reported_bad_videos:
                self.reported_bad_videos.add(entry)
                rank_zero_warn(f"skipped unreadable video (replaced by the next one of the split): {entry}")
        count = torch.tensor(float(len(bad)), device=self.device)
        self.log(f"data/bad_videos_{stage}", count, on_step=False, on_epoch=True, reduce_fx="sum", sync_dist=True)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        logits, loss = self._loss(batch, "train")
        self.train_metrics.update(logits.detach(), batch["label"])
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=batch["label"].shape[0])
        for site, layer in self.prompts.items():  # the same on every rank: parameters are synchronised
            prefix = "prompt/" if len(self.prompts) == 1 else f"prompt/{site}/"
            for name, value in layer.log_values().items():
                self.log(f"{prefix}{name}", value, on_step=True, on_epoch=False, batch_size=1)
        for group in self.optimizers().param_groups:
            self.log(f"lr/{group.get('name', 'group')}", group["lr"], on_step=True, on_epoch=False, batch_size=1)
        return loss

    def _eval_step(self, batch: dict, stage: str) -> None:
        logits, _ = self._loss(batch, stage)
        views = batch.get("view", torch.zeros_like(batch["label"]))
        self.eval_scores[stage].update(batch["video_id"], views, batch["label"], logits)

    def _eval_epoch_end(self, stage: str) -> None:
        clips = self.eval_scores[stage].gathered()
        self.eval_scores[stage].clear()
        if not clips.video_ids:
            return
        clip_report = classification_report(torch.stack(clips.logits), torch.tensor(clips.labels), self.num_classes)
        video_ids, labels, scores = aggregate_videos(clips, self.aggregation)
        report = classification_report(scores, labels, self.num_classes)
        metrics = {
            f"{stage}/acc1": report.acc1,
            f"{stage}/acc5": report.acc5,
            f"{stage}/mean_class_acc": report.mean_class_acc,
            f"{stage}/clip_acc1": clip_report.acc1,
            f"{stage}/clip_acc5": clip_report.acc5,
            f"{stage}/videos": float(report.count),
        }
        # Identical on every rank (computed from the gathered scores), so no further reduction is needed.
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=False, rank_zero_only=False)
        if stage == "test" and self.trainer.is_global_zero:
            names = getattr(self.trainer.datamodule, "class_names", None)
            path = write_predictions(run_directory(self.trainer), stage, video_ids, labels, scores, report, names)
            rank_zero_info(f"Test predictions written to {path}")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        logits, _ = self(batch["video"])
        views = batch.get("view", torch.zeros_like(batch["label"]))
        return {"video_id": batch["video_id"], "view": views, "label": batch["label"], "logits": logits.float()}


def trainable_parameter_names(module: nn.Module) -> Iterable[str]:
    """Names of the parameters an optimizer will update (handy to check a freezing policy)."""
    return [name for name, p in module.named_parameters() if p.requires_grad]
