{% test unique_combination(model, columns) %}
{#- Fails with the repeated combinations of `columns`. -#}
select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
