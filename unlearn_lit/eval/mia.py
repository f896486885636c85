"""Membership-inference attacks of METHOD.md §7.

- **Confidence attack** (Song et al. 2019, as used by Jia et al. 2023 and the MAPE-Unlearn paper): the
  feature is the softmax probability of the true class; an RBF SVC (C = 3, gamma = 'auto') is fit on
  members = the first |D_t| examples of D_r (label 1) and non-members = D_t (label 0), then applied to
  D_f. ``mia`` = fraction of D_f predicted member (lower = more forgotten; compare with RT),
  ``mia_efficacy`` = 1 - ``mia``.
- **Loss-threshold attack**: the score of membership is the negative loss; ROC-AUC between D_f
  (positives) and D_t (negatives), and the TPR at 1% FPR.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.svm import SVC


def _column(x: np.ndarray | list[float]) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1, 1)


def confidence_mia(
    member_conf: np.ndarray, nonmember_conf: np.ndarray, forget_conf: np.ndarray
) -> dict[str, float]:
    """The SVC confidence attack.

    Args:
        member_conf: ``[M]`` true-class probabilities of the member shadow set (first |D_t| of D_r).
        nonmember_conf: ``[M']`` true-class probabilities of the non-member shadow set (D_t).
        forget_conf: ``[|D_f|]`` true-class probabilities of the forget set.

    Returns:
        ``mia`` (fraction of D_f predicted member), ``mia_efficacy`` (1 - ``mia``) and ``attack_acc``
        (the attack's accuracy on its own shadow sets: 0.5 means it learned nothing).
    """
    x = np.concatenate([_column(member_conf), _column(nonmember_conf)])
    y = np.concatenate([np.ones(len(member_conf)), np.zeros(len(nonmember_conf))])
    if len(member_conf) == 0 or len(nonmember_conf) == 0 or len(forget_conf) == 0:
        raise ValueError("the confidence attack needs non-empty member, non-member and forget sets")
    attack = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    mia = float(attack.predict(_column(forget_conf)).mean())
    return {"mia": mia, "mia_efficacy": 1.0 - mia, "attack_acc": float(attack.score(x, y))}


def loss_attack(forget_losses: np.ndarray, test_losses: np.ndarray, fpr: float = 0.01) -> dict[str, float]:
    """Loss-threshold attack between D_f (members) and D_t (non-members).

    Args:
        forget_losses: ``[|D_f|]`` per-example losses on the forget set.
        test_losses: ``[|D_t|]`` per-example losses on the test set.
        fpr: false-positive rate at which the TPR is read (default 1%).

    Returns:
        ``loss_auc`` (0.5 = indistinguishable, 1 = every forget example has a lower loss than every test
        example) and ``loss_tpr_at_fpr`` (the largest TPR among thresholds with FPR <= ``fpr``).
    """
    forget_losses, test_losses = np.asarray(forget_losses, float), np.asarray(test_losses, float)
    y = np.concatenate([np.ones(len(forget_losses)), np.zeros(len(test_losses))])
    score = -np.concatenate([forget_losses, test_losses])  # lower loss = more member-like
    fprs, tprs, _ = roc_curve(y, score)
    return {
        "loss_auc": float(roc_auc_score(y, score)),
        "loss_tpr_at_fpr": float(tprs[fprs <= fpr + 1e-12].max()),
    }
