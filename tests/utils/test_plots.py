"""cawb/utils/plots.py: one colour per schedule in every figure, labelled restarts, seed lines, empty mAP said."""

from matplotlib.colors import to_hex

from cawb.training.lr_curve import lr_curve
from cawb.utils.plots import SCHEDULE_COLORS, BandCurve, lr_figure, map_figure, schedule_colors

CAWB_HYP = {"epochs": 20, "lr0": 0.01, "warmup_epochs": 1.0, "cawb": True, "cawb_steps": [4, 11]}
COS_HYP = {"epochs": 20, "lr0": 0.01, "warmup_epochs": 1.0, "cos_lr": True}


def line_colors(axes):
    return {line.get_label(): to_hex(line.get_color()) for line in axes.get_lines()
            if not line.get_label().startswith("_")}


def test_each_schedule_keeps_its_colour_whatever_the_order():
    cos, cawb = to_hex(SCHEDULE_COLORS["cos"]), to_hex(SCHEDULE_COLORS["CAWB"])
    assert cos != cawb
    assert [to_hex(c) for c in schedule_colors(["cos", "CAWB"])] == [cos, cawb]
    assert [to_hex(c) for c in schedule_colors(["CAWB", "cos"])] == [cawb, cos]
    two_cawb = [to_hex(c) for c in schedule_colors(["CAWB", "CAWB", None])]
    assert two_cawb[0] == cawb and len(set(two_cawb)) == 3 and cos not in two_cawb[1:]


def test_lr_figures_colour_by_schedule_and_label_the_restarts():
    cawb, cos = lr_curve(CAWB_HYP, label="cawb arm"), lr_curve(COS_HYP, label="cos arm")
    assert (cawb.schedule, cos.schedule) == ("CAWB", "cos")
    for curves in ([cos, cawb], [cawb, cos]):  # compare.py's lr.png, with the arms in either order
        colors = line_colors(lr_figure(curves).axes[0])
        assert colors["cawb arm"] == to_hex(SCHEDULE_COLORS["CAWB"])
        assert colors["cos arm"] == to_hex(SCHEDULE_COLORS["cos"])
    # the trainer's lr.png: one planned CAWB curve and the recorded lrs
    axes = lr_figure([lr_curve(CAWB_HYP, label="planned")], measured=[("recorded", [0.9, 1.9], [0.01, 0.01])]).axes[0]
    colors = line_colors(axes)
    assert colors["planned"] == to_hex(SCHEDULE_COLORS["CAWB"]) and colors["recorded"] == "#000000"
    restart_labels = [label for label in colors if "restarts" in label]
    assert restart_labels == ["CAWB restarts at 4, 11 (the lr jumps the epoch after, at x = s + 1)"]
    # ... which is where the planned curve changes: the restart epoch still belongs to the cycle it ends
    planned = lr_curve(CAWB_HYP)
    assert planned.lrs[4] < planned.lrs[3] and planned.lrs[5] > 5 * planned.lrs[4]  # at s = 4 still falling; up at 5


def test_the_last_epoch_and_the_last_iteration_are_drawn_with_their_width():
    for batches in (None, 4):
        curve = lr_curve(CAWB_HYP, batches_per_epoch=batches, label="planned")
        line = next(line for line in lr_figure([curve]).axes[0].get_lines() if line.get_label() == "planned")
        assert line.get_drawstyle() == "steps-post"
        assert list(line.get_xdata())[-1] == 20  # the last epoch (19) spans 19 to 20
        assert list(line.get_ydata())[-2:] == [curve.lrs[-1]] * 2


def band(schedule, members, restarts=()):
    x = list(range(1, len(members[0]) + 1))
    columns = list(zip(*members))
    return BandCurve(label=f"{schedule} arm", x=x, mean=[sum(c) / len(c) for c in columns],
                     low=[min(c) for c in columns], high=[max(c) for c in columns], schedule=schedule,
                     members=members, restarts=restarts)


def test_map_figure_draws_each_seed_thin_in_its_arms_colour_and_the_restarts():
    cos = band("cos", [[0.1, 0.2, 0.3], [0.12, 0.18, 0.33]])
    cawb = band("CAWB", [[0.1, 0.25, 0.3], [0.11, 0.2, 0.31], [0.09, 0.22, 0.35]], restarts=[2])
    figure = map_figure({"mAP_0.5 (ultralytics validator, per epoch)": [cawb, cos]}, title="t", note="source note")
    axes = figure.axes[0]
    lines = axes.get_lines()
    by_color = {}
    for line in lines:
        by_color.setdefault(to_hex(line.get_color()), []).append(line)
    cawb_lines = by_color[to_hex(SCHEDULE_COLORS["CAWB"])]
    cos_lines = by_color[to_hex(SCHEDULE_COLORS["cos"])]
    # CAWB: mean + 3 thin seed lines + 1 restart marker; cos: mean + 2 seed lines
    assert len(cawb_lines) == 5 and len(cos_lines) == 3
    thin = [line for line in cawb_lines if line.get_linewidth() < 1]
    assert len(thin) == 4  # 3 seeds and the dotted restart
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["CAWB arm",
                      "CAWB restarts at 2 (the lr jumps at x = s + 1; the first mAP after it is at x = s + 2)",
                      "cos arm"]
    assert axes.get_ylabel().startswith("mAP_0.5 (ultralytics validator")
    assert figure._suptitle.get_text().endswith("\nsource note")
    assert not any("is 0" in text.get_text() for text in axes.texts)


def test_an_all_zero_map_figure_says_so():
    zero = band("cos", [[0.0, 0.0], [0.0, 0.0]])
    axes = map_figure({"mAP_0.5": [zero]}).axes[0]
    assert any("every per-epoch mAP here is 0" in text.get_text() for text in axes.texts)
