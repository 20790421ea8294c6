import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve as sk_roc_curve

from vadkit import metrics as M
from vadkit.features import geometry as G


def random_case(rng, n, ties):
    labels = rng.integers(0, 2, n)
    if labels.min() == labels.max():
        labels[0] = 1 - labels[0]
    scores = rng.normal(size=n) + labels * rng.uniform(0, 2)
    if ties:
        scores = np.round(scores, 1)  # many tied scores
    return scores, labels


@pytest.mark.parametrize("seed", range(30))
def test_auc_and_ap_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    scores, labels = random_case(rng, int(rng.integers(2, 500)), ties=seed % 2 == 0)
    assert abs(M.roc_auc(scores, labels) - roc_auc_score(labels, scores)) < 1e-9
    assert abs(M.average_precision(scores, labels) - average_precision_score(labels, scores)) < 1e-9


def test_roc_curve_matches_sklearn_points():
    rng = np.random.default_rng(1)
    scores, labels = random_case(rng, 300, ties=True)
    fpr, tpr, _ = M.roc_curve(scores, labels)
    sk_fpr, sk_tpr, _ = sk_roc_curve(labels, scores, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr)


def test_hand_computed_cases():
    # positives 0.9, 0.4; negatives 0.5, 0.1: pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) -> 3/4
    assert M.roc_auc([0.9, 0.5, 0.4, 0.1], [1, 0, 1, 0]) == 0.75
    # a tie between a positive and a negative counts one half
    assert M.roc_auc([0.5, 0.5], [1, 0]) == 0.5
    # AP: ranking 0.9(+) 0.5(-) 0.4(+): precision 1 at recall .5, 2/3 at recall 1 -> 0.5 + 1/3
    assert math.isclose(M.average_precision([0.9, 0.5, 0.4, 0.1], [1, 0, 1, 0]), 0.5 + 1 / 3)
    assert M.equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == 0.0
    # FAR: normal frames 0.6, 0.4, 0.5 -> two of three at or above 0.5
    assert math.isclose(M.false_alarm_rate([0.6, 0.4, 0.5, 0.9], [0, 0, 0, 1]), 2 / 3)


def test_eer_symmetric_case():
    # scores of the negatives are a shifted copy of the positives: the EER is where the curves cross
    scores = np.r_[np.arange(10), np.arange(5, 15)]
    labels = np.r_[np.zeros(10), np.ones(10)]
    assert math.isclose(M.equal_error_rate(scores, labels), 0.25, abs_tol=0.05)


def test_single_class_auc_is_nan_and_macro_skips_it():
    assert math.isnan(M.roc_auc([0.1, 0.2], [0, 0]))
    scores = {"a": np.array([0.1, 0.9, 0.8]), "b": np.array([0.3, 0.2, 0.1])}
    labels = {"a": np.array([0, 1, 1]), "b": np.array([0, 0, 0])}
    result = M.evaluate_frames(scores, labels)
    assert result["macro_auc"] == 1.0 and result["macro_videos"] == 1
    assert math.isclose(result["micro_auc"], roc_auc_score(np.r_[labels["a"], labels["b"]], np.r_[scores["a"], scores["b"]]))
    assert result["far_normal_videos"] == 0.0 and result["num_frames"] == 6


def test_evaluate_rejects_length_mismatch_naming_the_video():
    with pytest.raises(ValueError, match="video v1: 3 frame scores but 4 frame labels"):
        M.evaluate_frames({"v1": np.zeros(3)}, {"v1": np.zeros(4)})


def test_bad_labels_and_nan_scores_rejected():
    with pytest.raises(ValueError, match="labels must be 0/1"):
        M.roc_auc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        M.roc_auc([np.nan, 0.2], [0, 1])


def test_snippets_to_frames_extend_and_drop():
    s = np.array([0.1, 0.5, 0.9])
    extend = G.snippets_to_frames(s, 53, snippet_len=16, tail="extend")
    assert extend.shape == (53,)
    assert np.all(extend[:16] == 0.1) and np.all(extend[16:32] == 0.5) and np.all(extend[32:] == 0.9)
    drop = G.snippets_to_frames(s, 53, snippet_len=16, tail="drop")
    assert np.all(np.isnan(drop[48:])) and np.all(drop[32:48] == 0.9)
    assert M.valid_frames(drop).sum() == 48


def test_snippets_to_frames_overlapping_mean_and_count_check():
    frames = G.snippets_to_frames(np.array([1.0, 3.0]), 6, snippet_len=4, stride=2)
    assert frames.tolist() == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="expected 3 snippets"):
        G.snippets_to_frames(np.zeros(2), 48)
    assert G.num_snippets(47) == 2 and G.num_snippets(15) == 0


def test_dropped_frames_leave_metrics():
    s = G.snippets_to_frames(np.array([0.2, 0.8]), 40, tail="drop")
    y = np.zeros(40, int)
    y[16:] = 1  # frames 32..39 are anomalous but have no score: left out
    result = M.evaluate_frames({"v": s}, {"v": y})
    assert result["frames_without_score"] == 8 and result["num_frames"] == 32 and result["micro_auc"] == 1.0


def test_confusion_and_accuracy():
    cm = M.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert M.accuracy([0, 1, 1, 2], [0, 1, 2, 2]) == 0.75
    assert M.confusion_matrix([0, 0], [0, 1], 2, normalize=True).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        M.confusion_matrix([0, 2], [0, 1], 2)


def test_protocol_card_marks_per_video_minmax_as_test_statistics():
    card = M.ProtocolCard(dataset="ucsd_ped2", normalisation="per-video-minmax")
    assert card.uses_test_statistics
    assert "per-video-minmax" in card.to_markdown()
    assert M.ProtocolCard.from_dict(card.to_dict()) == card
    with pytest.raises(ValueError, match="tail_policy"):
        M.ProtocolCard(tail_policy="cut")
