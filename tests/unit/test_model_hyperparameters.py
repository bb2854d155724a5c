import pytest
from mlmodel.contract import UserError
from mlmodel.hyperparameters import DEFAULTS, HyperparameterError, parse_hyperparameters


def test_no_hyperparameters_gives_the_defaults():
    assert parse_hyperparameters({}) == DEFAULTS


def test_string_values_are_parsed_to_their_types():
    params = parse_hyperparameters(
        {
            "max_depth": "3",
            "max_leaf_nodes": "8",
            "min_samples_split": "4",
            "min_samples_leaf": "2",
            "criterion": "entropy",
            "random_state": "42",
        }
    )
    assert params == {
        "max_depth": 3,
        "max_leaf_nodes": 8,
        "min_samples_split": 4,
        "min_samples_leaf": 2,
        "criterion": "entropy",
        "random_state": 42,
    }


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("max_depth", "None", None),
        ("max_depth", "none", None),
        ("max_depth", " 7 ", 7),
        ("max_leaf_nodes", "None", None),
        ("max_leaf_nodes", "2", 2),
        ("min_samples_split", "0.25", 0.25),
        ("min_samples_split", "1.0", 1.0),
        ("min_samples_leaf", "0.1", 0.1),
        ("criterion", "gini", "gini"),
        ("criterion", "log_loss", "log_loss"),
        ("random_state", "None", None),
        ("random_state", "0", 0),
        ("random_state", "4294967295", 4294967295),
    ],
)
def test_valid_value_is_accepted(name, text, expected):
    assert parse_hyperparameters({name: text})[name] == expected


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("max_depth", "-3", "must be a positive integer or None"),
        ("max_depth", "0", "must be a positive integer or None"),
        ("max_depth", "2.5", "must be a positive integer or None"),
        ("max_depth", "deep", "must be a positive integer or None"),
        ("max_depth", "", "must be a positive integer or None"),
        ("max_leaf_nodes", "1", "must be an integer of at least 2 or None"),
        ("min_samples_split", "1", "must be an integer of at least 2 or a fraction in (0, 1]"),
        ("min_samples_split", "1.5", "must be an integer of at least 2 or a fraction in (0, 1]"),
        ("min_samples_split", "0.0", "must be an integer of at least 2 or a fraction in (0, 1]"),
        ("min_samples_leaf", "0", "must be a positive integer or a fraction in (0, 1)"),
        ("min_samples_leaf", "1.0", "must be a positive integer or a fraction in (0, 1)"),
        ("min_samples_leaf", "nan", "must be a positive integer or a fraction in (0, 1)"),
        ("criterion", "mse", "must be one of gini, entropy, log_loss"),
        ("criterion", "Gini", "must be one of gini, entropy, log_loss"),
        ("random_state", "-1", "must be an integer from 0 to 4294967295 or None"),
        ("random_state", "4294967296", "must be an integer from 0 to 4294967295 or None"),
    ],
)
def test_invalid_value_names_the_parameter_and_the_value(name, text, reason):
    with pytest.raises(HyperparameterError) as raised:
        parse_hyperparameters({name: text})
    assert str(raised.value) == f"hyperparameter {name}={text!r} is invalid: {reason}"
    assert raised.value.name == name


def test_max_depth_message_matches_the_documented_example():
    with pytest.raises(
        HyperparameterError, match=r"^hyperparameter max_depth='-3' is invalid: must be a positive"
    ):
        parse_hyperparameters({"max_depth": "-3"})


def test_unknown_hyperparameter_is_an_error_naming_it():
    with pytest.raises(UserError, match=r"unknown hyperparameter 'feature_dim'.*max_depth"):
        parse_hyperparameters({"feature_dim": "300"})


def test_hyperparameter_errors_are_user_errors():
    assert issubclass(HyperparameterError, UserError)


def test_parameters_sagemaker_adds_itself_are_ignored():
    params = parse_hyperparameters(
        {"sagemaker_program": "x", "_tuning_objective_metric": "acc", "max_depth": "2"}
    )
    assert params["max_depth"] == 2
    assert "sagemaker_program" not in params


def test_json_quoted_strings_and_json_numbers_are_accepted():
    params = parse_hyperparameters({"criterion": '"entropy"', "max_depth": 4, "random_state": None})
    assert (params["criterion"], params["max_depth"], params["random_state"]) == ("entropy", 4, None)
