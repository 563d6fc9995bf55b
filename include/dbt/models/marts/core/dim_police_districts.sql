-- The SFPD police districts as the dataset names them, with 'Out of SF'.
with

districts as (

    select * from {{ ref('police_districts') }}

),

final as (

    select
        police_district,
        is_out_of_sf

    from districts

)

select * from final
