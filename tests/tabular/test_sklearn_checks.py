from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from tabular import TabularClassifier, TabularRegressor

# Enough steps on the checks' 100-200 row data sets to pass their accuracy bars.
SMALL = dict(
    epochs=10,
    lr=1e-2,
    batch_size=16,
    layers=(16,),
    verbose=0,
    random_state=0,
    early_stopping=False,
)

# Checks that cannot apply, with the reason.
WEIGHTS = (
    "mini-batch training: a row of weight 2 is not the same as the row twice (other "
    "batches, another number of steps), as for MLPClassifier"
)
EXPECTED = {"check_sample_weight_equivalence_on_dense_data": WEIGHTS}


@parametrize_with_checks(
    [TabularClassifier(**SMALL), TabularRegressor(**SMALL)],
    expected_failed_checks=lambda est: EXPECTED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
