{#- Rows for which the expression is not true (dbt_utils' test of the same name, without the
    package). -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
