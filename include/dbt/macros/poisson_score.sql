{#- How far a count k stands above (or below) the count mu expected of it, as a Poisson
    variable: the signed deviance residual sign(k - mu) * sqrt(2 * (k * ln(k / mu) - (k - mu))).
    About standard normal under the Poisson model, and unlike a z-score over cells it grows
    with the evidence: 3 reports against 1.5 expected scores 1.07, 400 against 251 scores 8.67.
    0 when mu is 0 (then k is 0 too), null when mu is unknown. Rounded to 4 decimals. -#}
{% macro poisson_score(k, mu) -%}
round(
    cast(
        case
            when {{ mu }} = 0 then 0
            when {{ mu }} > 0 then
                sign({{ k }} - {{ mu }}) * sqrt(greatest(
                    2 * (
                        {{ k }} * ln(greatest({{ k }}, 1) / nullif({{ mu }}, 0))
                        - ({{ k }} - {{ mu }})
                    ),
                    0
                ))
        end
        as {{ type_double() }}
    ),
    4
)
{%- endmacro %}
